"""The pull-request plan comment: summary first, every stack shown, under GitHub's limit at any size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import stack_config
from tools import plan
from tools.github_api import MAX_BODY
from tools.harness import run_stack
from tools.plan_cost import stack_cost
from tools.plan_report import COMMENT_MARKER
from tools.policy_eval import POLICY_CONFIG_DIR, evaluate, load_policy_config
from tools.pr_plan import DEFAULT_LIMIT, Outcome, StackPlan, render_comment

RUN = "https://github.com/sophia-ai/sophia-infra/actions/runs/1"


def document(stack: str, **overrides: str) -> dict[str, Any]:
    run = run_stack(stack, config_overrides=overrides)
    evaluation = evaluate(run, load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json"))
    return plan.plan_document(run, stack_cost(run), evaluation)


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    pools = json.loads(stack_config()["sophia:gpuPools"])
    for pool in pools:
        pool.update(min=50, desired=50, max=50)
    scaled = document("prod", **{"sophia:gpuPools": json.dumps(pools), "sophia:monthlyBudgetUsd": "900000"})
    # A root type renamed: every resource of the stack is new, under another URN.
    renamed = [
        {**r, "urn": r["urn"].replace("sophia:platform:Platform", "sophia:platform:Root")} for r in scaled["resources"]
    ]
    scaled["resources"] += renamed
    return {"dev": document("dev"), "prod": document("prod"), "scaled": scaled, "dr": document("dr")}


NOTHING = Outcome(2, None, "error: no base")


def test_the_comment_stays_under_the_limit_at_any_size(plans: dict[str, dict[str, Any]]) -> None:
    stacks = [
        StackPlan("dev", Outcome(0, plans["dev"], ""), NOTHING),
        StackPlan("prod", Outcome(0, plans["scaled"], ""), NOTHING),
        StackPlan("dr", Outcome(0, plans["dr"], ""), NOTHING),
    ]
    full = render_comment(stacks, RUN, limit=10**9)
    assert len(full) > MAX_BODY  # three new stacks, one scaled and renamed: over GitHub's limit
    comment = render_comment(stacks, RUN)
    assert len(comment) <= DEFAULT_LIMIT
    assert comment.startswith(COMMENT_MARKER)
    summary = comment[: comment.index("<details>")]
    for stack in ("dev", "prod", "dr"):
        assert f"| `{stack}` |" in summary
    assert f"[this run]({RUN})" in comment
    assert comment.count("<details><summary><code>") == 3


def test_a_stack_that_fails_is_shown_with_its_error(plans: dict[str, dict[str, Any]]) -> None:
    error = "error: invalid stack config: sophia:gpuPools[0].desired: must be <= max"
    stacks = [
        StackPlan("dev", Outcome(2, None, error), Outcome(0, plans["dev"], "")),
        StackPlan("prod", Outcome(0, plans["prod"], ""), Outcome(0, plans["prod"], "")),
    ]
    comment = render_comment(stacks, RUN)
    assert f"| `dev` | failed: {error} |" in comment
    assert error in comment[comment.index("<details>") :]


def test_a_blocked_base_is_still_compared_with_its_verdict(plans: dict[str, dict[str, Any]]) -> None:
    stacks = [StackPlan("prod", Outcome(0, plans["prod"], ""), Outcome(1, plans["prod"], "error: 1 mandatory"))]
    comment = render_comment(stacks, RUN)
    row = next(line for line in comment.splitlines() if line.startswith("| `prod` |"))
    assert row.endswith("| blocked: mandatory policy violation or over budget |")
    assert row.startswith("| `prod` | clean | $")
    assert "| $0.00 | 0 | 0 | 0 |" in row  # compared with the blocked base, not everything new
    assert "The base branch's plan: blocked" in comment
