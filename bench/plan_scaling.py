"""Plan wall time and peak memory for prod as it is, and for prod scaled up.

.venv/bin/python bench/plan_scaling.py

Each scenario runs in a fresh process: what `make plan` does end to end: the program under the
mock runtime, every policy, the cost model and the markdown report. Scaled means 50 instances in
each GPU pool and 100 Qdrant clusters, which with Redis, Postgres, monitoring and the restore
checks is over 100 services. Prints the figures and the scaled/as-is ratios.
"""

from __future__ import annotations

import io
import json
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
QDRANT_CLUSTERS = 100


def scaled_overrides() -> dict[str, str]:
    config = stack_config("prod")
    pools = json.loads(config["sophia:gpuPools"])
    for pool in pools:
        pool.update(min=POOL_SIZE, desired=POOL_SIZE, max=POOL_SIZE)
    layer = json.loads(config["sophia:dataLayer"])
    layer["qdrant"]["clusters"] = QDRANT_CLUSTERS
    return {"sophia:gpuPools": json.dumps(pools), "sophia:dataLayer": json.dumps(layer)}


def plan_once(scenario: str) -> dict[str, Any]:
    """One end-to-end plan, as tools.plan runs it, in this process."""
    overrides = scaled_overrides() if scenario == "scaled" else {}
    started = time.perf_counter()
    run = run_stack("prod", config_overrides=overrides)
    evaluation = evaluate(run, load_policy_config(POLICY_CONFIG_DIR / "prod.json"))
    cost = stack_cost(run)
    report = io.StringIO(render_markdown(plan_document(run, cost, evaluation)))
    wall = time.perf_counter() - started
    services = sum(1 for r in run.resources if r.type.startswith("sophia:data:") and r.type.endswith("Cluster"))
    return {
        "scenario": scenario,
        "resources": len(run.resources),
        "instances": len(run.by_type("pulumi-python:dynamic/lambda:Instance")),
        "services": services,
        "seconds": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "report_chars": len(report.getvalue()),
        "violations": len(evaluation.violations),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(plan_once(sys.argv[2])))
        return
    results = {}
    for scenario in ("as-is", "scaled"):
        child = subprocess.run(
            [sys.executable, __file__, "--child", scenario], capture_output=True, text=True, check=True, cwd=ROOT
        )
        results[scenario] = json.loads(child.stdout.strip().splitlines()[-1])
    header = f"{'scenario':<8} {'resources':>9} {'instances':>9} {'services':>8} {'seconds':>8} {'peak RSS MiB':>12}"
    print(header)
    for r in results.values():
        print(
            f"{r['scenario']:<8} {r['resources']:>9} {r['instances']:>9} {r['services']:>8} "
            f"{r['seconds']:>8.2f} {r['peak_rss_mib']:>12.1f}"
        )
    small, large = results["as-is"], results["scaled"]
    memory = large["peak_rss_mib"] / small["peak_rss_mib"]
    print(
        f"ratio scaled/as-is: resources x{large['resources'] / small['resources']:.1f}, "
        f"time x{large['seconds'] / small['seconds']:.1f}, memory x{memory:.1f}; "
        f"per resource {small['seconds'] / small['resources'] * 1000:.1f} ms -> "
        f"{large['seconds'] / large['resources'] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
