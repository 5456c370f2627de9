"""The pack as a whole: metadata, config handling, the real entry point, and the shipped stacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel

from policies.pack import all_policies
from settings import parse_settings
from tests.helpers import stack_config
from tests.policies.helpers import POLICIES, res, run_of
from tools.harness import PROJECT_ROOT, run_stack
from tools.policy_eval import POLICY_CONFIG_DIR, PolicyConfigError, engine_config, evaluate, load_policy_config

NAME = re.compile(r"^(aws|kubernetes|lambda-cloud|sophia|pulumi)-[a-z0-9]+(-[a-z0-9]+){2,}$")
STACKS = ("prod", "dr", "dev")


def test_every_policy_states_name_description_severity_remediation_and_level() -> None:
    policies = all_policies()
    assert len({p.name for p in policies}) == len(policies)
    for policy in policies:
        assert NAME.match(policy.name), policy.name
        assert policy.description.endswith(".")
        assert policy.severity is not None
        assert policy.remediation_steps
        category = (policy.tags or [""])[0]
        expected = EnforcementLevel.ADVISORY if category == "hygiene" else EnforcementLevel.MANDATORY
        assert category in ("security", "budget", "hygiene")
        assert policy.enforcement_level is expected, policy.name


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_pass_every_policy(stack: str) -> None:
    evaluation = evaluate(run_stack(stack), load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json"))
    assert evaluation.violations == ()
    assert evaluation.skipped == ()


@pytest.mark.parametrize("stack", STACKS)
def test_policy_budget_matches_the_stack_settings(stack: str) -> None:
    config = load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json")
    settings = parse_settings(stack_config(stack))
    assert config["sophia-cost-stack-budget"]["monthlyBudgetUsd"] == settings.monthly_budget_usd
    assert config["aws-rds-instance-multi-az"]["environment"] == settings.environment.value


def test_schema_defaults_are_applied_and_config_overrides() -> None:
    resolved = engine_config(
        all_policies(),
        {
            "aws-rds-instance-backup-retention": {"minimumDays": 14},
            "sophia-cost-stack-budget": {"monthlyBudgetUsd": 10},
            "lambda-cloud-instance-type-allowed": {"allowedInstanceTypes": {}},
            "sophia-gpupool-size-bounds": {"poolBounds": {}},
        },
    )
    assert resolved["aws-rds-instance-backup-retention"] == (EnforcementLevel.MANDATORY, {"minimumDays": 14})
    assert resolved["aws-elasticache-replicationgroup-snapshots"] == (EnforcementLevel.MANDATORY, {"minimumDays": 1})
    assert resolved["aws-resource-required-tags"][0] is EnforcementLevel.ADVISORY


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"no-such-policy": "advisory"}, "unknown policies: no-such-policy"),
        ({"aws-kms-key-rotation": "sometimes"}, "aws-kms-key-rotation: enforcement level must be one of"),
        ({"sophia-cost-stack-budget": {"monthlyBudgetUsd": -5}}, "sophia-cost-stack-budget.monthlyBudgetUsd"),
        ({"sophia-cost-stack-budget": {"monthlyBudgt": 5}}, "sophia-cost-stack-budget"),
        ({}, "'monthlyBudgetUsd' is a required property"),
    ],
)
def test_bad_policy_config_is_refused(config: dict[str, Any], error: str) -> None:
    if "sophia-cost-stack-budget" not in config and config:
        config = {**config, "sophia-cost-stack-budget": {"monthlyBudgetUsd": 5}}
    with pytest.raises(PolicyConfigError, match=re.escape(error)):
        engine_config([POLICIES["sophia-cost-stack-budget"], POLICIES["aws-kms-key-rotation"]], config)


def test_enforcement_levels_come_from_config() -> None:
    run = run_of(res("aws:kms/key:Key", "k", {}))
    policy = [POLICIES["aws-kms-key-rotation"]]
    assert [v.level for v in evaluate(run, {}, policy).violations] == ["mandatory"]
    assert [v.level for v in evaluate(run, {"aws-kms-key-rotation": "advisory"}, policy).violations] == ["advisory"]
    assert evaluate(run, {"all": "disabled"}, policy).violations == ()


def test_unknown_values_during_preview_skip_the_policy_like_the_engine() -> None:
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    run = run_of(res("aws:kms/key:Key", "k", {"enableKeyRotation": unknown}))
    evaluation = evaluate(run, {}, [POLICIES["aws-kms-key-rotation"]])
    assert evaluation.violations == ()
    assert evaluation.skipped[0][0] == "aws-kms-key-rotation"
    assert "can't be known during preview" in evaluation.skipped[0][1]


def test_bad_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_policy_config(path)
    with pytest.raises(PolicyConfigError, match="cannot read policy config"):
        load_policy_config(tmp_path / "missing.json")


def test_rules_import_in_a_fresh_process_in_policies_with_only_the_packs_dependencies() -> None:
    """The CLI runs the pack from policies/ in a virtualenv holding only policies/requirements.txt."""
    script = (
        "import sys, json; sys.path.insert(0, '..');"
        "from policies.pack import all_policies; names = [p.name for p in all_policies()];"
        "print(json.dumps({'count': len(names), 'modules': sorted({m.split('.')[0] for m in sys.modules})}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT / "policies", capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert loaded["count"] == len(all_policies())
    # Nothing outside the pack's requirements (pulumi, pulumi-policy and theirs, PyYAML among them)
    # or the stdlib-only packages.
    forbidden = {
        "pydantic",
        "pulumi_aws",
        "pulumi_kubernetes",
        "pulumi_random",
        "requests",
        "settings",
        "components",
        "tools",
        "tenacity",
        "jsonschema",
    }
    assert forbidden.isdisjoint(loaded["modules"]), forbidden & set(loaded["modules"])
    requirements = (PROJECT_ROOT / "policies" / "requirements.txt").read_text()
    assert "pulumi-policy==" in requirements
    assert "pulumi==" in requirements


def test_the_entry_point_serves_the_pack_over_grpc() -> None:
    """Run policies/__main__.py as the CLI does and ask the analyzer what it serves."""
    process = subprocess.Popen(
        [sys.executable, "__main__.py"], cwd=PROJECT_ROOT / "policies", stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
        assert info.name == "sophia-guardrails"
        assert sorted(p.name for p in info.policies) == sorted(p.name for p in all_policies())
        budget = next(p for p in info.policies if p.name == "sophia-cost-stack-budget")
        assert list(budget.configSchema.required) == ["monthlyBudgetUsd"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_policy_has_a_test_that_names_it() -> None:
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_pack.py")
    untested = [p.name for p in all_policies() if f'"{p.name}"' not in tests]
    assert untested == []
