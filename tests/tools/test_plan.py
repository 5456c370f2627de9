from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from policies.pack import PACK_VERSION
from tools import plan
from tools.harness import PROJECT_ROOT, SECRET_PLACEHOLDER, run_stack
from tools.policy_eval import UNEXPANDED
from tools.redact import REDACTED

FIXTURE = Path(__file__).parent / "fixtures" / "secret_project"


def run_plan(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = plan.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_text_plan_prints_the_tree_and_counts(stack: str) -> None:
    code, out, err = run_plan("--stack", stack)
    assert code == 0, err
    assert out.startswith(f"Stack sophia/{stack}: ")
    assert f"\nsophia-{stack} (sophia:platform:Platform)\n" in out
    assert "By type:\n  " in out
    assert "sophia:platform:Platform  1" in out or "sophia:platform:Platform" in out.split("By type:")[1]


def test_dr_tree_nests_children_under_their_component() -> None:
    _, out, _ = run_plan("--stack", "dr")
    assert "sophia-dr (sophia:platform:Platform)\n  sophia-dr-aws (pulumi:providers:aws)\n" in out


def test_json_plan_has_every_resource() -> None:
    code, out, _ = run_plan("--stack", "dr", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "dr"
    names = [r["name"] for r in document["resources"]]
    assert names == [r.name for r in run_stack("dr").resources]
    for resource in document["resources"]:
        assert set(resource) == {"type", "name", "urn", "parent", "protect", "inputs"}


def test_json_plan_redacts_secrets() -> None:
    document = plan.plan_document(run_stack("test", project_dir=FIXTURE))
    pet = next(r for r in document["resources"] if r["name"] == "box-pet")  # type: ignore[attr-defined]
    assert pet["inputs"]["keepers"] == {"token": REDACTED, "team": "infra"}
    assert pet["protect"] is True
    assert document["outputs"] == {"token": REDACTED, "petLength": 3.0}
    assert SECRET_PLACEHOLDER not in json.dumps(document)


def test_bad_config_exits_2_with_one_line() -> None:
    broken = PROJECT_ROOT / "Pulumi.broken-test.yaml"
    text = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text().replace("max: 10", "max: 1")
    broken.write_text(text)
    try:
        code, out, err = run_plan("--stack", "broken-test")
    finally:
        broken.unlink()
    assert code == plan.EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1
    assert "sophia:gpuPools[0].desired: must be <= max" in err


def test_cli_process_prints_no_traceback(tmp_path: Path) -> None:
    broken = PROJECT_ROOT / "Pulumi.typo-test.yaml"
    broken.write_text(
        (PROJECT_ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("readReplicas: 0\n      storageGib: 20", "readReplicas: 0\n      storageGb: 20")
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tools.plan", "--stack", "typo-test"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        broken.unlink()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: invalid stack config: sophia:dataLayer.postgres.storageGib: is required; "
        "sophia:dataLayer.postgres.storageGb: unknown key; "
        "allowed here: archiveServerName, drReplication, readReplicas, storageGib"
    ]


PROD_POLICY_CONFIG = PROJECT_ROOT / "policies" / "config" / "prod.json"


def plan_edited_prod(edit: tuple[str, str], *extra: str, config_stack: str = "policy-test") -> tuple[int, str, str]:
    """`make plan` on a copy of Pulumi.prod.yaml with one edit, checked against prod's policy config
    (renamed for the copy's stack, as a config is bound to its stack)."""
    stack = PROJECT_ROOT / "Pulumi.policy-test.yaml"
    text = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text()
    assert edit[0] in text
    config = json.loads(PROD_POLICY_CONFIG.read_text())
    config["sophia-pack-stack-config"]["stack"] = config_stack
    stack.write_text(text.replace(edit[0], edit[1]))
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "policy-test.json"
            path.write_text(json.dumps(config))
            return run_plan("--stack", "policy-test", "--policy-config", str(path), *extra)
    finally:
        stack.unlink()


def test_a_policy_config_for_another_stack_is_refused() -> None:
    code, _, err = plan_edited_prod(("environment: prod", "environment: prod"), config_stack="prod")
    assert code == plan.EXIT_BAD_INPUT
    assert err.startswith("error: the policy config is for stack 'prod', not 'policy-test'")


def test_opening_postgres_to_the_world_fails_naming_policy_and_resource() -> None:
    code, out, err = plan_edited_prod(
        (
            "      - {protocol: tcp, fromPort: 443, toPort: 443, cidrs: [0.0.0.0/0], description: gateway https}\n",
            "      - {protocol: tcp, fromPort: 5432, toPort: 5432, cidrs: [0.0.0.0/0]}\n",
        )
    )
    assert code == plan.EXIT_VIOLATION
    assert "[mandatory, critical] lambda-cloud-firewall-no-public-data-ports: ai-core-firewall-us-west-1:" in out
    assert err.startswith(
        "error: 12 mandatory policy violations, first: lambda-cloud-firewall-no-public-data-ports on "
    )


def test_forty_h100_nodes_fail_on_type_bounds_and_budget() -> None:
    code, out, err = plan_edited_prod(
        (
            "instanceType: gpu_1x_gh200\n      min: 2\n      desired: 2\n      max: 10",
            "instanceType: gpu_8x_h100_sxm5\n      min: 40\n      desired: 40\n      max: 40",
        ),
        "--format",
        "json",
    )
    assert code == plan.EXIT_VIOLATION
    document = json.loads(out)
    violations = document["policies"]["violations"]
    typed = [v for v in violations if v["policy"] == "lambda-cloud-instance-type-allowed"]
    # Each of the 40 instance records, and each of the fleet's 40 members (what actually launches).
    records = [v for v in typed if "lambda:Instance::" in v["urn"]]
    members = [v for v in typed if "lambda:Fleet::" in v["urn"]]
    assert (len(records), len(members)) == (40, 40)
    assert records[0]["urn"].endswith("::ai-core-0")
    assert {v["policy"] for v in violations} == {
        "lambda-cloud-instance-type-allowed",
        "sophia-gpupool-size-bounds",
        "sophia-cost-stack-budget",
    }
    assert document["cost"]["byGroup"]["gpu-pool/ai-core"] == round(40 * 23.92 * 730, 2)
    assert "first: lambda-cloud-instance-type-allowed on " in err


def test_clean_plan_reports_cost_and_no_violations() -> None:
    code, out, _ = run_plan("--stack", "prod", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["policies"]["violations"] == []
    # Only what the harness cannot expand offline (the CloudNativePG manifest, unless fetched).
    assert {s["policy"] for s in document["policies"]["skipped"]} <= {UNEXPANDED}
    # The pools' floors at catalog prices (burst is not in the total), four KMS keys at $1 a month (the
    # two backup buckets' and the replication alarm topics', one per region), and the DR replication
    # endpoint's load balancer: 7.16 x 730 + 4 + 0.0225 x 730 = 5226.80 + 4 + 16.425 = 5247.225, half-even.
    assert document["cost"]["monthlyUsd"] == 5247.22
    helm_reason = "a Helm release's objects are not visible to the pack: it may create load balancers and volumes"
    assert document["cost"]["unpriced"] == [
        {
            "name": name,
            "reason": helm_reason,
            "type": "kubernetes:helm.sh/v3:Release",
            "urn": next(r["urn"] for r in document["resources"] if r["name"] == name),
        }
        # The Helm releases, allowed unpriced by name in prod.json: the data layer's cert-manager, the
        # monitoring stack, and the service fleet's operators (KEDA, Envoy Gateway) and tracing charts.
        for name in (
            "sophia-prod-data-cert-manager",
            "sophia-prod-monitoring-stack",
            "sophia-prod-services-operators-envoy-gateway",
            "sophia-prod-services-operators-keda",
            "sophia-prod-services-tracing-collector",
            "sophia-prod-services-tracing-jaeger",
        )
    ]
    code, text, _ = run_plan("--stack", "prod")
    assert "  total              $    5,247.22 of $15,000 budget (35%)\n" in text
    assert f"Policies (sophia-guardrails {PACK_VERSION}, config prod.json): 0 violations, 0 mandatory\n" in text


def test_the_dr_plan_prices_its_node_groups_at_their_max_within_its_budget() -> None:
    code, out, _ = run_plan("--stack", "dr", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["policies"]["violations"] == []
    # EKS at 730 h: the control plane on 1.33, past its end of standard support, 0.60 x 730 = 438.00;
    # the base group 6 x r6i.xlarge 0.252 x 730 = 1,103.76; the fleet's groups at prod's ceilings,
    # ai-core 10, data 6 and dev 1 x g6e.4xlarge 3.00424 x 730 = 2,193.0952 each (37,282.6184),
    # business 8 x m6i.2xlarge 0.384 x 730 = 2,242.56: 41,066.9384.
    assert document["cost"]["byGroup"]["aws/eks"] == 41066.94
    # + the cache 902.28, the NLB 0.0225 x 730 = 16.425, three KMS keys 3.00, two HTTPS health checks
    # on non-AWS endpoints with three priced options each 2 x (0.75 + 3 x 2.00) = 13.50, three NAT
    # gateways and their addresses 3 x (0.045 + 0.005) x 730 = 109.50: 42,111.6434.
    assert document["cost"]["monthlyUsd"] == 42111.64
    assert document["budgetUsd"] == 45000.0


def test_missing_or_bad_policy_config_is_bad_input(tmp_path: Path) -> None:
    code, _, err = run_plan("--stack", "prod", "--policy-config", str(tmp_path / "none.json"))
    assert code == plan.EXIT_BAD_INPUT
    assert err.startswith("error: cannot read policy config")
    bad = tmp_path / "bad.json"
    stack_config = {"stack": "prod", "environment": "prod"}
    bad.write_text(
        json.dumps({"sophia-pack-stack-config": stack_config, "sophia-cost-stack-budget": {"monthlyBudgetUsd": 0}})
    )
    code, _, err = run_plan("--stack", "prod", "--policy-config", str(bad))
    assert code == plan.EXIT_BAD_INPUT
    assert "policy config sophia-cost-stack-budget.monthlyBudgetUsd" in err
    assert err.count("\n") == 1


def test_the_plan_shows_each_autoscaled_pools_floor_burst_and_off_hours_saving() -> None:
    code, out, _ = run_plan("--stack", "prod", "--format", "json")
    assert code == 0
    pools = {p["pool"]: p for p in json.loads(out)["autoscaling"]}
    assert pools["ai-core"]["floorMonthlyUsd"] == 2175.40
    assert pools["dev"]["floorMonthlyUsd"] == 0.0
    assert pools["dev"]["offHoursSavingMonthlyUsd"] > 0
    assert all(p["expectedBurstMonthlyUsd"] > 0 for p in pools.values())
    _, text, _ = run_plan("--stack", "prod")
    assert "Autoscaled pools, per month" in text
    assert "  dev       $       0.00  $       292.95  $         335.92\n" in text
    _, dr, _ = run_plan("--stack", "dr", "--format", "json")
    assert "autoscaling" not in json.loads(dr)
