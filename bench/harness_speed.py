"""Wall time and peak memory of one whole-stack run under the mock runtime, per stack.

.venv/bin/python bench/harness_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.harness import run_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run_stack("prod")  # warm imports so the figures are per run, not per process
    print(f"{'stack':<6} {'resources':>9} {'median ms':>10} {'peak MiB':>9}")
    for stack in ("prod", "dr", "dev"):
        times = []
        tracemalloc.start()
        for _ in range(args.repeat):
            start = time.perf_counter()
            run = run_stack(stack)
            times.append(time.perf_counter() - start)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{stack:<6} {len(run.resources):>9} {statistics.median(times) * 1000:>10.1f} {peak / 2**20:>9.2f}")


if __name__ == "__main__":
    main()
