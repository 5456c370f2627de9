"""The DR promoter as the dr stack registers it, and the stacks rendering what the lease says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks

from components.data.postgres_cluster import FENCED_INSTANCES
from components.dr.promoter import FUNCTION_MODULES, PROMOTER_GROUP
from failover import PACKAGE_DIR
from failover.lease import DR, Lease
from failover.promoter import FUNCTION_TIMEOUT_SECONDS, RUN_SECONDS, SELF_FENCE_SECONDS
from failover.stack_lease import LeaseReadError, LeaseView
from tests.k8s_schemas import kubernetes_objects, validate_manifest
from tools.harness import EchoMocks, StackRun, run_stack

GUARD_SECRET = "guard-secret-access-key-value"
SECRET_SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def dr_holds(table: str, region: str) -> LeaseView:
    return LeaseView(table, region, table_exists=True, lease=Lease(DR, 2, 0.0))


def no_table(table: str, region: str) -> LeaseView:
    return LeaseView(table, region, table_exists=False, lease=None)


def unreadable(table: str, region: str) -> LeaseView:
    raise LeaseReadError(f"could not read lease table {table} in {region}: AccessDenied")


def cluster_spec(run: StackRun) -> dict[str, object]:
    (cluster,) = [r for r in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")]
    return dict(cluster.inputs["spec"])


def cluster_annotations(run: StackRun) -> dict[str, str]:
    (cluster,) = [r for r in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")]
    return dict(cluster.inputs["metadata"].get("annotations") or {})


def test_the_lease_table_is_protected_and_recoverable() -> None:
    run = run_stack("dr")
    (table,) = run.by_type("aws:dynamodb/table:Table")
    assert table.protect
    assert table.inputs["name"] == "sophia-postgres-lease"
    assert table.inputs["deletionProtectionEnabled"] is True
    assert table.inputs["pointInTimeRecovery"]["enabled"] is True
    assert table.inputs["hashKey"] == "id"
    assert run.outputs["failoverLeaseTable"] == "sophia-postgres-lease"


def test_the_promoter_runs_every_minute_one_at_a_time_and_outlives_its_polling() -> None:
    run = run_stack("dr")
    (function,) = run.by_type("aws:lambda/function:Function")
    assert function.inputs["handler"] == "failover.handler.handler"
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["reservedConcurrentExecutions"] == 1
    assert function.inputs["timeout"] == FUNCTION_TIMEOUT_SECONDS > RUN_SECONDS
    assert function.inputs["vpcConfig"]["subnetIds"]
    env = function.inputs["environment"]["variables"]
    assert env["LEASE_TABLE"] == "sophia-postgres-lease"
    assert env["CNPG_NAMESPACE"] == "sophia-data"
    assert env["CNPG_CLUSTER"] == "postgres"
    (rule,) = run.by_type("aws:cloudwatch/eventRule:EventRule")
    assert rule.inputs["scheduleExpression"] == "rate(1 minute)"
    (target,) = run.by_type("aws:cloudwatch/eventTarget:EventTarget")
    (permission,) = run.by_type("aws:lambda/permission:Permission")
    assert permission.urn in target.depends_on  # EventBridge may invoke before the first run
    assert permission.inputs["principal"] == "events.amazonaws.com"
    # A promoter that fails or does not run raises an alarm.
    (alarm,) = [a for a in run.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name.endswith("-errors")]
    assert alarm.inputs["metricName"] == "Errors"
    assert alarm.inputs["treatMissingData"] == "breaching"


def test_the_promoter_may_touch_the_lease_item_health_checks_and_one_cluster_only() -> None:
    run = run_stack("dr")
    (policy,) = [p for p in run.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("failover-policy")]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    actions = {
        action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "route53:GetHealthCheckStatus",
        "route53:UpdateHealthCheck",
        "eks:DescribeCluster",
    }
    (lease,) = [s for s in statements if "dynamodb:GetItem" in s["Action"]]
    assert lease["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/sophia-postgres-lease"
    assert lease["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["postgres"]}}
    # Besides the deployers' and operators' entries (test_eks.py), the promoter's, mapped to its group.
    (access,) = [a for a in run.by_type("aws:eks/accessEntry:AccessEntry") if a.inputs.get("kubernetesGroups")]
    assert access.inputs["kubernetesGroups"] == [PROMOTER_GROUP]
    (role,) = [r for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role") if "cluster-patch" in r.name]
    assert role.inputs["rules"] == [
        {
            "apiGroups": ["postgresql.cnpg.io"],
            "resources": ["clusters"],
            "resourceNames": ["postgres"],
            "verbs": ["get", "patch"],
        }
    ]
    (binding,) = [
        r for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding") if "cluster-patch" in r.name
    ]
    assert binding.inputs["subjects"][0] == {
        "kind": "Group",
        "name": PROMOTER_GROUP,
        "apiGroup": "rbac.authorization.k8s.io",
    }


def test_route_53_never_fails_back_by_itself() -> None:
    """The promoter pins the primary's check (disabled + inverted); a later `pulumi up` must not
    release it. The secondary's check stays fully managed."""
    run = run_stack("dr")
    checks = {c.name: c for c in run.by_type("aws:route53/healthCheck:HealthCheck")}
    primary = next(c for name, c in checks.items() if "primary" in name)
    secondary = next(c for name, c in checks.items() if "secondary" in name)
    assert set(primary.ignore_changes) == {"disabled", "invertHealthcheck"}
    assert secondary.ignore_changes == ()


def test_the_function_archive_holds_everything_the_handler_imports(tmp_path: Path) -> None:
    """Unpack what Lambda gets and import the handler from it alone (boto3 is the runtime's)."""
    for module in FUNCTION_MODULES:
        target = tmp_path / "failover" / module
        target.parent.mkdir(exist_ok=True)
        target.write_bytes((PACKAGE_DIR / module).read_bytes())
    probe = (
        "import sys, failover.handler; "
        "own = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('components', 'settings', 'tools', 'policies', 'catalog', 'costing', 'providers')); "
        "print(failover.handler.__file__); print(own)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    handler_file, own = result.stdout.split("\n")[:2]
    assert handler_file.startswith(str(tmp_path))
    assert own == "[]"


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_stacks_render_what_the_lease_says(stack: str) -> None:
    """After a failover (DR holds the lease), `pulumi up` of either stack keeps the old primary
    fenced and the DR database promoted; the objects stay valid for their CRDs and schemas."""
    steady, failed_over = run_stack(stack), run_stack(stack, lease_reader=dr_holds)
    if stack == "prod":
        assert FENCED_INSTANCES not in cluster_annotations(steady)
        assert cluster_annotations(failed_over)[FENCED_INSTANCES] == '["*"]'
    else:
        assert cluster_spec(steady)["replica"] == {"self": "dr", "primary": "primary", "source": "primary"}
        assert cluster_spec(failed_over)["replica"] == {"self": "dr", "primary": "dr", "source": "primary"}
        # DR backs itself up in either role, so the day it takes writes a base backup exists.
        for run in (steady, failed_over):
            (backup,) = run.by_type("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup")
            assert backup.inputs["spec"]["immediate"] is True
            assert backup.inputs["spec"]["method"] == "plugin"
    assert any("DR" in line or "dr region holds the lease" in line for line in failed_over.logs)
    version = "1.31"
    problems = {name: validate_manifest(m, version) for name, m in kubernetes_objects(failed_over)}
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_the_first_dr_up_finds_no_table_and_follows_the_primary() -> None:
    assert cluster_spec(run_stack("dr", lease_reader=no_table))["replica"]["primary"] == "primary"  # type: ignore[index]


def test_prod_refuses_a_lease_table_that_does_not_exist() -> None:
    with pytest.raises(
        pulumi.RunError, match=r"sophia:dataLayer\.postgres\.drReplication\.failoverLeaseTable.*dr stack"
    ):
        run_stack("prod", lease_reader=no_table)


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_an_unreadable_lease_stops_the_program_naming_the_key(stack: str) -> None:
    key = {"prod": "drReplication.failoverLeaseTable", "dr": "dr.failover.leaseTable"}[stack]
    with pytest.raises(pulumi.RunError, match=rf"{key}.*AccessDenied"):
        run_stack(stack, lease_reader=unreadable)


def test_prod_without_a_lease_table_runs_no_guard_and_reads_no_lease() -> None:
    def must_not_read(table: str, region: str) -> LeaseView:
        raise AssertionError("read the lease")

    run = run_stack("prod", config_overrides=_without_lease_table(), lease_reader=must_not_read)
    assert not [d for d in run.by_type("kubernetes:apps/v1:Deployment") if "failover-guard" in d.name]
    assert run.outputs.get("postgresFailoverLeaseTable") is None


def _without_lease_table() -> dict[str, str]:
    from tests.helpers import stack_config  # noqa: PLC0415

    config = stack_config("prod")
    data = json.loads(config["sophia:dataLayer"])
    del data["postgres"]["drReplication"]["failoverLeaseTable"]
    return {"sophia:dataLayer": json.dumps(data)}


def test_the_guard_renews_with_the_promoters_timings_and_may_fence_only_its_cluster() -> None:
    run = run_stack("prod")
    (deployment,) = [d for d in run.by_type("kubernetes:apps/v1:Deployment") if "failover-guard" in d.name]
    spec = deployment.inputs["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # never two guards at once
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SELF_FENCE_SECONDS"] == str(int(SELF_FENCE_SECONDS))
    assert env["LEASE_TABLE"] == "sophia-postgres-lease"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["CNPG_CLUSTER"] == "postgres"
    assert env["CLUSTER_ROLE"] == "primary"  # prod is not being rebuilt from DR
    assert env["AWS_SECRET_ACCESS_KEY"] is None  # from the Secret, never inline
    (config_map,) = [c for c in run.by_type("kubernetes:core/v1:ConfigMap") if "failover-guard" in c.name]
    assert config_map.inputs["data"]["guard.sh"] == (PACKAGE_DIR / "guard.sh").read_text()
    (policy,) = [p for p in run.by_type("aws:iam/userPolicy:UserPolicy") if "guard" in p.name]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert sorted(statement["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert statement["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/sophia-postgres-lease"
    (role,) = [r for r in run.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role") if "failover-guard" in r.name]
    assert role.inputs["rules"][0]["resourceNames"] == ["postgres"]
    assert role.inputs["rules"][0]["verbs"] == ["get", "patch"]


class AccessKeyMocks(EchoMocks):
    """The provider fills in an access key's secret."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == "aws:iam/accessKey:AccessKey" and "guard" in args.name:
            outputs["secret"] = GUARD_SECRET
        return resource_id, outputs


def test_the_guards_key_reaches_the_cluster_only_as_a_secret() -> None:
    run = run_stack("prod", mock_impl=AccessKeyMocks())
    (secret,) = [s for s in run.by_type("kubernetes:core/v1:Secret") if "failover-guard" in s.name]
    string_data = secret.inputs["stringData"]
    assert string_data[SECRET_SIG_KEY] == SECRET_SIG  # the whole stringData is a secret in state
    assert string_data["value"]["AWS_SECRET_ACCESS_KEY"] == GUARD_SECRET
    assert GUARD_SECRET not in json.dumps([r.inputs for r in run.resources if r is not secret])
