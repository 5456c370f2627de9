"""Concurrent creates against the Lambda emulator: API calls, 429s, and wall time against its lower bound.

    .venv/bin/python bench/lambda_bringup.py [--sizes 10 50] [--scale 0.05]

Lower bound for N single-GPU instances: the launch limit allows one launch per 12 s, so the
last launch cannot start before (N - 1) x 12 s, and it then boots for the emulator's boot
time. Ratio = wall time / lower bound (1.0 would be perfect). All times are API seconds
(wall seconds divided by the time scale).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.lambda_cloud import provider as provider_module
from providers.lambda_cloud.provider import InstanceProvider
from providers.lambda_cloud.timing import LAUNCH_INTERVAL_S
from tests.providers.lambda_cloud.emulator import DEFAULT_BOOT_S, LambdaEmulator

SSH_KEY = "bench-key"


def bring_up(count: int, scale: float) -> dict[str, object]:
    with LambdaEmulator(time_scale=scale, validate=False) as emulator:
        emulator.add_ssh_key(SSH_KEY)
        os.environ["LAMBDA_API_KEY"] = emulator.api_key
        os.environ["LAMBDA_API_URL"] = emulator.base_url
        failures: list[BaseException] = []

        def create(index: int) -> None:
            props = {
                "name": f"bench-{index}",
                "instance_type": "gpu_1x_a10",
                "region": "us-west-1",
                "fallback_regions": [],
                "ssh_key_names": [SSH_KEY],
                "tags": {"pool": "bench"},
                "launch_key": uuid.uuid4().hex[:24],
            }
            try:
                InstanceProvider().create(props)
            except Exception as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = (time.monotonic() - started) / scale
        lower_bound = (count - 1) * LAUNCH_INTERVAL_S + DEFAULT_BOOT_S[1]
        return {
            "n": count,
            "created": count - len(failures),
            "wall_s": wall,
            "lower_bound_s": lower_bound,
            "ratio": wall / lower_bound,
            "429s": emulator.rate_limited,
            "calls": dict(sorted(emulator.calls.items())),
        }


def _quiet(message: str) -> None:
    del message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--scale", type=float, default=0.05, help="wall seconds per API second")
    args = parser.parse_args()
    os.environ["LAMBDA_API_TIME_SCALE"] = str(args.scale)
    setattr(provider_module, "report", _quiet)  # noqa: B010 - per-instance progress would drown the table
    print(f"time scale {args.scale} (1 API second = {args.scale * 1000:.0f} ms); times below in API seconds")
    print(f"{'N':>4} {'created':>7} {'wall s':>8} {'bound s':>8} {'ratio':>6} {'429s':>5}  calls per endpoint")
    for count in args.sizes:
        result = bring_up(count, args.scale)
        calls = ", ".join(f"{k} {v}" for k, v in result["calls"].items())  # type: ignore[attr-defined]
        print(
            f"{result['n']:>4} {result['created']:>7} {result['wall_s']:>8.0f} {result['lower_bound_s']:>8.0f} "
            f"{result['ratio']:>6.3f} {result['429s']:>5}  {calls}"
        )


if __name__ == "__main__":
    main()
