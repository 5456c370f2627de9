"""The pack as a whole: metadata, config handling and its binding to one stack, the entry point run from a
copy of policies/ alone, and the shipped stacks (as a first preview and as an update)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi_policy import EnforcementLevel

from components.dr.region import DR_KUBERNETES
from policies.pack import PACK_DIR, PACK_VERSION, all_policies
from settings import parse_settings
from tests.helpers import stack_config
from tests.policies.analyzer_client import configure_request, serve
from tests.policies.helpers import POLICIES, aws, evaluation, program
from tools.harness import PROJECT_ROOT, run_stack
from tools.policy_eval import (
    POLICY_CONFIG_DIR,
    UNEXPANDED,
    PolicyConfigError,
    engine_config,
    evaluate,
    load_policy_config,
)

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


@pytest.mark.parametrize("first_preview", [True, False], ids=["first-preview", "update"])
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_pass_every_policy(stack: str, first_preview: bool) -> None:
    run = run_stack(stack, first_preview=first_preview)
    evaluation_ = evaluate(run, load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json"))
    assert evaluation_.violations == ()
    # Nothing is left unjudged, but the children of a remote manifest the harness cannot read offline
    # (../shared/reference/manifests, fetched by scripts/fetch-reference.sh), which it names.
    assert [name for name, _ in evaluation_.skipped] == [UNEXPANDED] * len(run.unexpanded)


@pytest.mark.parametrize("stack", STACKS)
def test_policy_config_matches_the_stack_settings(stack: str) -> None:
    config = load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json")
    settings = parse_settings(stack_config(stack))
    assert config["sophia-cost-stack-budget"]["monthlyBudgetUsd"] == settings.monthly_budget_usd
    expected = {
        "stack": stack,
        "environment": settings.environment.value,
        "dataNamespaces": [(settings.kubernetes or DR_KUBERNETES).data_namespace],
    }
    if settings.fleet is not None:
        expected["serviceNamespaces"] = [settings.fleet.namespace]
    assert config["sophia-pack-stack-config"] == expected


def test_schema_defaults_are_applied_and_config_overrides() -> None:
    resolved = engine_config(
        all_policies(),
        {
            "sophia-pack-stack-config": {"stack": "prod", "environment": "prod"},
            "aws-rds-instance-backup-retention": {"minimumDays": 14},
            "sophia-cost-stack-budget": {"monthlyBudgetUsd": 10},
            "lambda-cloud-instance-type-allowed": {"allowedInstanceTypes": {}},
            "sophia-gpupool-size-bounds": {"poolBounds": {}},
        },
    )
    assert resolved["aws-rds-instance-backup-retention"] == (EnforcementLevel.MANDATORY, {"minimumDays": 14})
    assert resolved["aws-elasticache-replicationgroup-snapshots"] == (EnforcementLevel.MANDATORY, {"minimumDays": 1})
    assert resolved["sophia-cost-stack-budget"][1] == {"monthlyBudgetUsd": 10, "allowUnpriced": []}
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
    run = program(lambda: aws.kms.Key("k"))
    policy = [POLICIES["aws-kms-key-rotation"]]
    assert [v.level for v in evaluate(run, {}, policy).violations] == ["mandatory"]
    assert [v.level for v in evaluate(run, {"aws-kms-key-rotation": "advisory"}, policy).violations] == ["advisory"]
    assert evaluate(run, {"all": "disabled"}, policy).violations == ()


def test_a_resource_rule_that_meets_an_unknown_names_the_resource() -> None:
    def build() -> None:
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        aws.kms.Key("k", enable_key_rotation=vpc.arn.apply(lambda _: True))

    found = evaluation("aws-kms-key-rotation", program(build, first_preview=True))
    assert found.violations == ()
    assert found.skipped == (
        ("aws-kms-key-rotation", "k: string value at .enableKeyRotation can't be known during preview"),
    )


def test_bad_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_policy_config(path)
    with pytest.raises(PolicyConfigError, match="cannot read policy config"):
        load_policy_config(tmp_path / "missing.json")


def test_the_version_is_declared_once() -> None:
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["version"] == PACK_VERSION
    sources = "".join(p.read_text() for p in PACK_DIR.rglob("*.py"))
    assert f'"{PACK_VERSION}"' not in sources


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    """policies/ copied alone, under another name (as `pulumi policy publish` ships it)."""
    copy = tmp_path / "published-pack"
    shutil.copytree(PACK_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    return copy


def test_a_copy_of_policies_alone_serves_the_pack(pack_copy: Path) -> None:
    """No project root on the path (the old entry point failed with `No module named 'policies'`)."""
    with serve(pack_copy, sys.executable) as (stub, _):
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.name == "sophia-guardrails"
        assert info.version == PACK_VERSION
        assert sorted(p.name for p in info.policies) == sorted(p.name for p in all_policies())
        budget = next(p for p in info.policies if p.name == "sophia-cost-stack-budget")
        assert list(budget.configSchema.required) == ["monthlyBudgetUsd"]
        prod = load_policy_config(POLICY_CONFIG_DIR / "prod.json")
        stub.Configure(configure_request(prod), timeout=30)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Configure(configure_request(load_policy_config(POLICY_CONFIG_DIR / "dev.json")), timeout=30)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "the policy config is for stack 'dev', not 'prod'" in str(refused.value.details())


def test_the_pack_imports_nothing_of_the_program() -> None:
    script = (
        "import json, runpy, sys; sys.argv = ['x'];"
        "import importlib.util as u; p = sys.argv;"
        "spec = u.spec_from_file_location('policies', 'policies/__init__.py', submodule_search_locations=['policies']);"
        "m = u.module_from_spec(spec); sys.modules['policies'] = m; spec.loader.exec_module(m);"
        "from policies.pack import all_policies; all_policies();"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin"},
    )
    loaded = set(json.loads(result.stdout))
    forbidden = {
        "settings",
        "components",
        "providers",
        "tools",
        "pydantic",
        "pulumi_aws",
        "pulumi_kubernetes",
        "jsonschema",
    }
    assert forbidden.isdisjoint(loaded), forbidden & loaded
    requirements = (PACK_DIR / "requirements.txt").read_text()
    assert "pulumi-policy==" in requirements
    assert "pulumi==" in requirements


def test_every_policy_is_documented_with_its_level_and_severity() -> None:
    page = (PROJECT_ROOT / "docs" / "policies.md").read_text()
    for policy in all_policies():
        level = policy.enforcement_level.value if policy.enforcement_level else ""
        severity = policy.severity.value if policy.severity else ""
        assert f"| `{policy.name}` |" in page, policy.name
        assert re.search(rf"\| `{re.escape(policy.name)}` \| \w+ \| {level} \| {severity} \|", page), policy.name


def test_every_policy_has_a_test_that_names_it() -> None:
    tests = "".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py") if p.name != "test_pack.py")
    untested = [p.name for p in all_policies() if f'"{p.name}"' not in tests]
    assert untested == []
