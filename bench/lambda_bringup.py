"""Bring-up of the prod program's GPU pools through the real provider host, against the emulator.

    .venv/bin/python bench/lambda_bringup.py [--scale 0.05]

Each scenario runs the program under the SDK's mock runtime for its dynamic resources, starts the
SDK's provider host (`python -m pulumi.dynamic`, four worker threads) as the CLI does, and plays
`pulumi up` through it with the CLI's default parallelism on this machine (4 x CPUs). Meanwhile,
once launches have begun, Checks of an unrelated resource are sent and timed: the engine would
send them for any other dynamic resource of the stack.

Lower bound for N single-GPU instances: launches are limited to one per 12 s, so the last cannot
start before (N - 1) x 12 s, and it then boots (240 s in the emulator). Ratio = time of `up` /
bound. All times are API seconds (wall seconds divided by the time scale).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.lambda_cloud.timing import LAUNCH_INTERVAL_S
from tests.providers.lambda_cloud.deployment import RULESET, pools_config
from tests.providers.lambda_cloud.emulator import DEFAULT_BOOT_S, LambdaEmulator
from tests.providers.lambda_cloud.engine import Engine, desired_resources
from tests.providers.lambda_cloud.host import ProviderHost
from tools.harness import read_stack_file

CHECKS = 5


def scenarios() -> dict[str, dict[str, int]]:
    prod_pools = json.loads(read_stack_file("prod")[0]["sophia:gpuPools"])
    return {
        "prod at max": {p["name"]: p["max"] for p in prod_pools},
        "one pool of 50": {"ai-core": 50},
    }


def bring_up(sizes: dict[str, int], scale: float) -> dict[str, Any]:
    # Pulumi launching every instance of every pool (no cluster-autoscaler): the launch-rate bound.
    overrides: dict[str, str | None] = {"sophia:gpuPools": pools_config(sizes), "sophia:autoscaler": None}
    desired, _ = desired_resources("prod", overrides)
    count = sum(sizes.values())
    config, secret_keys = read_stack_file("prod")
    config.update({k: v for k, v in overrides.items() if v is not None})
    config.pop("sophia:autoscaler", None)
    with LambdaEmulator(time_scale=scale, validate=False) as emulator:
        config["sophia:lambdaApiKey"] = emulator.api_key
        config["sophia:lambdaApiUrl"] = emulator.base_url
        with ProviderHost(env={"LAMBDA_API_TIME_SCALE": str(scale)}) as host:
            host.configure(config, {*secret_keys, "sophia:lambdaApiKey"})
            engine = Engine(host, parallel=4 * (os.cpu_count() or 1))
            unrelated = next(d for d in desired if d.type == RULESET)
            check_waits: list[float] = []
            finished = threading.Event()

            def probe() -> None:
                # Once the fleet is launching, time a Check now and then, as the engine would send one.
                while emulator.launches_accepted < 1 and not finished.is_set():
                    time.sleep(scale)
                for _ in range(CHECKS):
                    if finished.is_set():
                        return
                    check_waits.append(host.timed_check(unrelated.urn, engine._resolve(unrelated.inputs)) / scale)
                    finished.wait(count * LAUNCH_INTERVAL_S * scale / CHECKS)

            prober = threading.Thread(target=probe)
            prober.start()
            started = time.monotonic()
            engine.up(desired)
            elapsed = (time.monotonic() - started) / scale
            finished.set()
            prober.join()
            active = sum(1 for i in emulator.live() if emulator.status_of(i) == "active")
            engine.destroy()
        bound = (count - 1) * LAUNCH_INTERVAL_S + DEFAULT_BOOT_S[1]
        return {
            "n": count,
            "active": active,
            "up_s": elapsed,
            "bound_s": bound,
            "ratio": elapsed / bound,
            "429s": emulator.rate_limited,
            "check_s": max(check_waits) if check_waits else float("nan"),
            "checks": len(check_waits),
            "calls": dict(sorted(emulator.calls.items())),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.05, help="wall seconds per API second")
    args = parser.parse_args()
    print(f"time scale {args.scale} (1 API second = {args.scale * 1000:.0f} ms); times below in API seconds")
    print(f"{'scenario':<15} {'N':>3} {'active':>6} {'up s':>6} {'bound s':>7} {'ratio':>6} {'429s':>4} {'check s':>7}")
    results = []
    for name, sizes in scenarios().items():
        result = bring_up(sizes, args.scale)
        results.append(result)
        print(
            f"{name:<15} {result['n']:>3} {result['active']:>6} {result['up_s']:>6.0f} {result['bound_s']:>7.0f} "
            f"{result['ratio']:>6.3f} {result['429s']:>4} {result['check_s']:>7.2f}"
        )
        print("    calls: " + ", ".join(f"{k} {v}" for k, v in result["calls"].items()))
    print(
        "lambda bring-up: "
        + ", ".join(f"N={r['n']} ratio {r['ratio']:.3f}" for r in results)
        + f"; {sum(r['429s'] for r in results)} x 429; slowest unrelated Check "
        + f"{max(r['check_s'] for r in results):.2f} API s"
    )


if __name__ == "__main__":
    main()
