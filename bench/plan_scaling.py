"""Plan wall time and peak memory for prod as it is, and for prod scaled up.

.venv/bin/python bench/plan_scaling.py [--profile]

Each scenario runs in a fresh process: what `make plan` does end to end: the program under the
mock runtime, every policy, the cost model and the markdown report. Scaled means 50 instances in
each GPU pool and 120 services in the fleet (prod's 14 and copies of them, 40 of each kind).
Prints the figures, the scaled/as-is ratios and, last, the cost per resource. `--profile` also
prints where the scaled run's time goes (cProfile, by own time).
"""

from __future__ import annotations

import copy
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import stack_config
from tools.harness import run_stack
from tools.plan import plan_document
from tools.plan_cost import stack_cost
from tools.plan_report import render_markdown
from tools.policy_eval import POLICY_CONFIG_DIR, evaluate, load_policy_config

ROOT = Path(__file__).resolve().parent.parent
POOL_SIZE = 50
SERVICES_PER_KIND = 40


def scaled_services(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prod's services, then copies of each kind's CPU-only ones up to `SERVICES_PER_KIND` per kind."""
    result = copy.deepcopy(services)
    for kind in ("ai", "business", "data"):
        templates = [s for s in services if s["kind"] == kind and not s["resources"].get("gpus")]
        count = sum(1 for s in services if s["kind"] == kind)
        for index in range(SERVICES_PER_KIND - count):
            copied = {k: v for k, v in templates[index % len(templates)].items() if k not in ("next", "offHours")}
            result.append({**copied, "name": f"{kind}-{index:03d}", "callers": []})
    return result


def scaled_overrides() -> dict[str, str]:
    config = stack_config("prod")
    pools = json.loads(config["sophia:gpuPools"])
    for pool in pools:
        pool.update(min=POOL_SIZE, desired=POOL_SIZE, max=POOL_SIZE)
    services = scaled_services(json.loads(config["sophia:services"]))
    return {"sophia:gpuPools": json.dumps(pools), "sophia:services": json.dumps(services)}


def plan_once(scenario: str) -> dict[str, Any]:
    """One end-to-end plan, as tools.plan runs it, in this process."""
    overrides = scaled_overrides() if scenario == "scaled" else {}
    started, cpu = time.perf_counter(), time.process_time()
    run = run_stack("prod", config_overrides=overrides)
    evaluation = evaluate(run, load_policy_config(POLICY_CONFIG_DIR / "prod.json"))
    cost = stack_cost(run)
    report = io.StringIO(render_markdown(plan_document(run, cost, evaluation)))
    wall = time.perf_counter() - started
    return {
        "scenario": scenario,
        "resources": len(run.resources),
        "instances": len(run.by_type("pulumi-python:dynamic/lambda:Instance")),
        "services": len(json.loads(overrides.get("sophia:services") or stack_config("prod")["sophia:services"])),
        "seconds": wall,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "report_chars": len(report.getvalue()),
        "violations": len(evaluation.violations),
    }


def profile(scenario: str) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(plan_once, scenario)
    stats = io.StringIO()
    pstats.Stats(profiler, stream=stats).sort_stats("tottime").print_stats(15)
    print(stats.getvalue())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(plan_once(sys.argv[2])))
        return
    if sys.argv[1:] == ["--profile-child"]:
        profile("scaled")
        return
    results = {}
    for scenario in ("as-is", "scaled"):
        child = subprocess.run(
            [sys.executable, __file__, "--child", scenario], capture_output=True, text=True, check=True, cwd=ROOT
        )
        results[scenario] = json.loads(child.stdout.strip().splitlines()[-1])
    header = (
        f"{'scenario':<8} {'resources':>9} {'instances':>9} {'services':>8} {'seconds':>8} {'cpu s':>7} "
        f"{'peak RSS MiB':>12}"
    )
    print(header)
    for r in results.values():
        print(
            f"{r['scenario']:<8} {r['resources']:>9} {r['instances']:>9} {r['services']:>8} "
            f"{r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} {r['peak_rss_mib']:>12.1f}"
        )
    small, large = results["as-is"], results["scaled"]
    if "--profile" in sys.argv:
        child = subprocess.run(
            [sys.executable, __file__, "--profile-child"], capture_output=True, text=True, check=True, cwd=ROOT
        )
        print(child.stdout)
    print(
        f"ratio scaled/as-is: resources x{large['resources'] / small['resources']:.1f}, "
        f"time x{large['seconds'] / small['seconds']:.1f}, memory x{large['peak_rss_mib'] / small['peak_rss_mib']:.1f}"
    )
    per_small = small["seconds"] / small["resources"] * 1000
    per_large = large["seconds"] / large["resources"] * 1000
    print(
        f"plan scaling: {large['resources']} resources in {large['seconds']:.1f} s, "
        f"{per_large:.1f} ms per resource (as-is {per_small:.1f} ms)"
    )


if __name__ == "__main__":
    main()
