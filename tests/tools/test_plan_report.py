"""The plan as a review tool: comparing with the base branch, markdown with a Mermaid diagram."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import stack_config
from tools import plan
from tools.harness import PROJECT_ROOT, run_stack
from tools.plan_cost import stack_cost
from tools.plan_report import COMMENT_MARKER, compare, cost_by_component, mermaid, render_markdown

AI_CORE_HOURLY = 1.49  # gpu_1x_gh200 in policies/catalog/lambda_catalog.json


def run_plan(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = plan.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def base_plan(tmp_path: Path) -> Path:
    code, out, err = run_plan("--stack", "prod", "--format", "json")
    assert code == 0, err
    path = tmp_path / "base.json"
    path.write_text(out)
    return path


def plan_of(**overrides: str) -> dict[str, object]:
    run = run_stack("prod", config_overrides=overrides)
    return plan.plan_document(run, stack_cost(run))


def test_compare_shows_what_a_change_adds_and_costs() -> None:
    pools = json.loads(stack_config()["sophia:gpuPools"])
    pools[0]["min"] = pools[0]["desired"] = 3  # one more ai-core floor instance
    comparison = compare(plan_of(), plan_of(**{"sophia:gpuPools": json.dumps(pools)}))
    assert [c.name for c in comparison.added] == ["ai-core-2"]
    assert comparison.removed == ()
    assert comparison.cost_delta_usd == pytest.approx(AI_CORE_HOURLY * 730, abs=0.01)
    assert comparison.group_deltas == {"gpu-pool/ai-core": pytest.approx(AI_CORE_HOURLY * 730, abs=0.01)}


def test_compare_names_the_inputs_that_changed() -> None:
    monitoring = json.loads(stack_config()["sophia:monitoring"])
    monitoring["retentionDays"] = 30
    comparison = compare(plan_of(), plan_of(**{"sophia:monitoring": json.dumps(monitoring)}))
    assert [(c.name, c.keys) for c in comparison.changed] == [("sophia-prod-monitoring-stack", ("values",))]
    assert comparison.cost_delta_usd == 0


def test_markdown_against_the_base_branch(tmp_path: Path) -> None:
    base = base_plan(tmp_path)
    code, out, _ = run_plan("--stack", "prod", "--format", "markdown", "--compare", str(base))
    assert code == 0
    assert out.startswith(COMMENT_MARKER + "\n### Plan: `prod` (clean)\n")
    assert "of $15,000.00 budget" in out
    assert "+$0.00" not in out
    assert "No change against the base branch." in out
    assert "```mermaid\nflowchart LR\n" in out
    assert "| gpu-pool/ai-core | $2,175.40 | $2.98 |" in out


def test_markdown_shows_violations_with_their_fix(tmp_path: Path) -> None:
    config = json.loads((PROJECT_ROOT / "policies" / "config" / "prod.json").read_text())
    config["lambda-cloud-instance-type-allowed"]["allowedInstanceTypes"]["ai-core"] = ["gpu_1x_a10"]
    strict = tmp_path / "prod.json"
    strict.write_text(json.dumps(config))
    code, out, _ = run_plan("--stack", "prod", "--format", "markdown", "--policy-config", str(strict))
    assert code == 1
    assert "(blocked: mandatory policy violation or over budget)" in out
    assert "| `lambda-cloud-instance-type-allowed` | mandatory |" in out


def test_mermaid_nests_the_components() -> None:
    _, out, _ = run_plan("--stack", "dr", "--format", "json")
    document = json.loads(out)
    diagram = mermaid(document)
    nodes = {line.split("[")[0].strip(): line for line in diagram.splitlines()[1:] if "[" in line}
    platform = next(k for k, v in nodes.items() if '"sophia-dr<br/>' in v)
    region = next(k for k, v in nodes.items() if '"sophia-dr-dr<br/>' in v)
    assert f"  {platform} --> {region}" in diagram.splitlines()


def test_cost_by_component_adds_up_to_the_total() -> None:
    _, out, _ = run_plan("--stack", "dr", "--format", "json")
    document = json.loads(out)
    by_component = cost_by_component(document)
    assert sum(by_component.values()) == pytest.approx(document["cost"]["monthlyUsd"], abs=0.05)
    assert set(by_component) == {"sophia-dr-dr"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"stack": "prod"}', "is not a plan"),
    ],
)
def test_bad_compare_file_is_bad_input(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_plan("--stack", "prod", "--format", "markdown", "--compare", str(path))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert expected in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe not utf-8", "is not UTF-8"),
        (b'{"stack": "prod", "resources": [{"name": "x", "type": "t"}]}', "resources/0: 'urn' is a required property"),
        (b'{"stack": "prod", "resources": [{"urn": "u", "type": "t"}]}', "'name' is a required property"),
        (b'{"stack": "prod", "resources": [{"urn": "u", "name": "n", "type": "t", "inputs": 3}]}', "inputs"),
        (b'{"stack": "prod", "resources": [], "cost": {"monthlyUsd": "12"}}', "cost/monthlyUsd"),
        (b'{"stack": "prod", "resources": [], "cost": {"byGroup": {"a": "1"}}}', "cost/byGroup/a"),
        (b'{"stack": "dev", "resources": []}', "is a plan of stack 'dev', not 'prod'"),
        (b"[]", "is not a plan"),
    ],
)
def test_foreign_or_broken_compare_files_are_bad_input(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "base.json"
    path.write_bytes(content)
    code, out, err = run_plan("--stack", "prod", "--format", "markdown", "--compare", str(path))
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert expected in err


def test_a_plan_of_another_stack_compares_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"stack": "dev", "resources": []}))
    code, out, _ = run_plan("--stack", "prod", "--format", "markdown", "--compare", str(path), "--compare-other-stack")
    assert code == 0
    assert "the base branch's cost is unknown" in out  # a base without costs is not $0


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_compare_says_it_applies_to_markdown_only(tmp_path: Path, fmt: str) -> None:
    code, out, err = run_plan("--stack", "prod", "--format", fmt, "--compare", str(base_plan(tmp_path)))
    assert (code, out) == (2, "")
    assert "--compare (COMPARE=) applies to --format markdown only" in err


def test_inputs_null_and_missing_compare_as_empty() -> None:
    old = {"stack": "prod", "resources": [{"urn": "u", "name": "n", "type": "t", "inputs": None}]}
    new = {"stack": "prod", "resources": [{"urn": "u", "name": "n", "type": "t"}]}
    assert compare(old, new).changed == ()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
_RESOURCE = st.fixed_dictionaries(
    {},
    optional={"urn": _JSON, "name": _JSON, "type": _JSON, "inputs": _JSON, "protect": _JSON, "parent": _JSON},
)
_PLAN = st.fixed_dictionaries(
    {},
    optional={
        "stack": st.just("prod") | _JSON,
        "resources": st.lists(_RESOURCE, max_size=3) | _JSON,
        "cost": st.fixed_dictionaries({}, optional={"monthlyUsd": _JSON, "byGroup": _JSON, "items": _JSON}) | _JSON,
        "budgetUsd": _JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_PLAN)
def test_any_broken_compare_file_is_refused_in_one_line_or_compared(
    tmp_path: Path, document: dict[str, object]
) -> None:
    path = tmp_path / "fuzzed.json"
    path.write_text(json.dumps(document))
    try:
        old = plan._read_plan(path, "prod")
    except plan.PlanFileError as error:
        assert "\n" not in str(error)
        return
    new = {"stack": "prod", "resources": [{"urn": "u", "name": "n", "type": "t", "inputs": {}}]}
    comparison = compare(old, new)  # whatever passed the check compares without an exception
    render_markdown(new, comparison, 0)
