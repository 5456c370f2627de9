"""`python -m tools.pr_plan --base-dir ../base --out plans`: the offline plan of every stack on this
branch and on the base branch, as one pull-request comment that fits GitHub's limit.

Writes `<out>/<stack>.json` and `<stack>.base.json` (the plans), `<stack>.md` (each stack in full)
and `comment.md` (a summary table first, then each stack folded, shortened as needed to stay under
`--limit` characters, pointing at the run's artifacts for the rest). A stack that fails on either
branch is still shown, with its error; a base that is blocked by a policy or its budget is still
compared, with its verdict. Exit code: the worst of the stacks' `tools.plan` exit codes (0 clean,
1 a mandatory violation or over budget, 2 bad input), so the workflow fails after commenting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.plan_report import COMMENT_MARKER, Comparison, compare, render_markdown, verdict

STACKS = ("dev", "prod", "dr")
# GitHub refuses comments over 65,536 characters; keep a margin for the marker and the pointer.
DEFAULT_LIMIT = 60_000
PLAN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Outcome:
    """One `make plan` run: its exit code, and the plan or the error line."""

    code: int
    document: dict[str, Any] | None
    error: str

    @property
    def verdict(self) -> str:
        if self.document is None:
            return f"failed: {self.error}" if self.error else "failed"
        return verdict(self.code)


@dataclass(frozen=True)
class StackPlan:
    stack: str
    head: Outcome
    base: Outcome

    def comparison(self) -> Comparison | None:
        if self.head.document is None:
            return None
        base_verdict = None if self.base.code == 0 else self.base.verdict
        old = self.base.document if self.base.document is not None else {"stack": self.stack, "resources": []}
        return compare(old, self.head.document, base_verdict)


def plan_in(tree: Path, stack: str) -> Outcome:
    """`make -s plan STACK=<stack> FORMAT=json` in a checkout (each branch with its own virtualenv)."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments; the stack names come from our own workflow
            ["make", "-s", "plan", f"STACK={stack}", "FORMAT=json"],  # noqa: S607 - make from PATH, as users run it
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=PLAN_TIMEOUT_S,
            check=False,
            env={k: v for k, v in os.environ.items() if k not in ("STACK", "FORMAT", "COMPARE")},
        )
    except (OSError, subprocess.TimeoutExpired) as failure:
        return Outcome(2, None, f"could not run the plan: {failure}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error = lines[-1] if lines else ""
    try:
        document = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        document = None
    return Outcome(result.returncode, document, error if result.returncode else "")


def _money(amount: float | None, signed: bool = False) -> str:
    if amount is None:
        return "unknown"
    sign = "+" if signed and amount > 0 else ("-" if amount < 0 else "")
    return f"{sign}${abs(amount):,.2f}"


def summary_table(plans: Sequence[StackPlan]) -> list[str]:
    out = [
        "| stack | this branch | per month | against the base | added | removed | changed | base branch |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for plan in plans:
        document = plan.head.document
        comparison = plan.comparison()
        if document is None or comparison is None:
            out.append(f"| `{plan.stack}` | {plan.head.verdict} | | | | | | {plan.base.verdict} |")
            continue
        monthly = float((document.get("cost") or {}).get("monthlyUsd", 0.0))
        out.append(
            f"| `{plan.stack}` | {plan.head.verdict} | {_money(monthly)} | "
            f"{_money(comparison.cost_delta_usd, signed=True)} | {len(comparison.added)} | "
            f"{len(comparison.removed)} | {len(comparison.changed)} | {plan.base.verdict} |"
        )
    return [*out, ""]


def stack_section(plan: StackPlan, *, diagram: bool = True, max_items: int | None = None) -> str:
    if plan.head.document is None:
        return f"### Plan: `{plan.stack}` ({plan.head.verdict})\n\n```\n{plan.head.error}\n```\n"
    return render_markdown(
        plan.head.document, plan.comparison(), plan.head.code, marker=False, diagram=diagram, max_items=max_items
    )


def render_comment(plans: Sequence[StackPlan], run_url: str | None, limit: int = DEFAULT_LIMIT) -> str:
    """Summary first; then each stack folded, in full while it fits, shorter when not."""
    pointer = f"the `plans` artifact of [this run]({run_url})" if run_url else "the `plans` artifact of this run"
    head = [COMMENT_MARKER, "## Offline plan against the base branch", "", *summary_table(plans)]
    tail = [f"Every stack in full, and the plans as JSON: {pointer}.", ""]
    budget = limit - len("\n".join(head + tail)) - 2
    sections: list[str] = []
    for plan in plans:
        # Shorter renderings, best first: full; no diagram; lists cut to 25 items; the verdict alone.
        candidates = [
            stack_section(plan),
            stack_section(plan, diagram=False),
            stack_section(plan, diagram=False, max_items=25),
            f"Details of `{plan.stack}` are too long for a comment: see {pointer}.\n",
        ]
        share = budget // (len(plans) - len(sections))
        body = next(c for c in candidates if len(_fold(plan, c)) <= share or c is candidates[-1])
        folded = _fold(plan, body)
        sections.append(folded)
        budget -= len(folded)
    return "\n".join([*head, *sections, *tail])


def _fold(plan: StackPlan, body: str) -> str:
    return f"<details><summary><code>{plan.stack}</code>: {plan.head.verdict}</summary>\n\n{body}\n</details>\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pr_plan", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-dir", type=Path, required=True, help="a checkout of the base branch")
    parser.add_argument("--head-dir", type=Path, default=Path.cwd(), help="this branch (default: here)")
    parser.add_argument("--out", type=Path, required=True, help="where the plans and comment.md go")
    parser.add_argument("--stacks", nargs="+", default=list(STACKS))
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="most characters in comment.md")
    parser.add_argument("--run-url", default=_run_url(), help="link to the run whose artifacts hold the plans")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plans = []
    for stack in args.stacks:
        plan = StackPlan(stack, plan_in(args.head_dir, stack), plan_in(args.base_dir, stack))
        plans.append(plan)
        for suffix, outcome in (("", plan.head), (".base", plan.base)):
            if outcome.document is not None:
                (args.out / f"{stack}{suffix}.json").write_text(json.dumps(outcome.document, indent=2) + "\n")
        (args.out / f"{stack}.md").write_text(stack_section(plan))
    (args.out / "comment.md").write_text(render_comment(plans, args.run_url, args.limit))
    worst = max((p.head.code for p in plans), default=0)
    for plan in plans:
        if plan.head.code:
            print(f"{plan.stack}: {plan.head.verdict}", file=sys.stderr)
    return worst


def _run_url() -> str | None:
    server, repository, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else None


if __name__ == "__main__":
    sys.exit(main())
