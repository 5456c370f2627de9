"""prod and DR as one CloudNativePG distributed topology, in every state the runbook walks through:
steady, failed over, prod rebuilt from DR for failback. Each state renders objects the API server
and CloudNativePG's webhook accept, and the two regions agree on names."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.data.postgres_cluster import DR_SERVER_NAME, FENCED_INSTANCES
from components.dr.region import PRIMARY_POSTGRES
from failover.aws import PROMOTION_PATCH
from failover.lease import DR, Lease
from failover.stack_lease import LeaseView
from tests.k8s_schemas import kubernetes_objects, validate_manifest
from tools.harness import PRIMARY_STACK_OUTPUTS, RegisteredResource, StackRun, read_stack_file, run_stack

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"


def dr_holds(table: str, region: str) -> LeaseView:
    return LeaseView(table, region, table_exists=True, lease=Lease(DR, 2, 0.0))


def rebuilding() -> dict[str, str]:
    """prod's config with `drReplication.rebuildFromDr` set."""
    config, _ = read_stack_file("prod")
    data = json.loads(config["sophia:dataLayer"])
    data["postgres"]["drReplication"]["rebuildFromDr"] = True
    return {"sophia:dataLayer": json.dumps(data)}


def cluster(run: StackRun) -> RegisteredResource:
    (found,) = run.by_type(CLUSTER)
    return found


def restore_check_env(run: StackRun, name_part: str) -> dict[str, Any]:
    """Every container's env of the one CronJob whose name holds `name_part`."""
    (check,) = [j for j in run.by_type("kubernetes:batch/v1:CronJob") if name_part in j.name]
    pod = check.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return {e["name"]: e.get("value") for c in pod["initContainers"] + pod["containers"] for e in c.get("env", [])}


def webhook_problems(spec: dict[str, Any]) -> list[str]:
    """CloudNativePG's own checks of the topology (v1.30.0 internal/webhook/v1/cluster_webhook.go):
    every externalCluster says how to reach it (validateExternalClusters: one of connectionParameters,
    plugin, barmanObjectStore), and self, primary and source name one of them
    (validateReplicaClusterExternalClusters), with no `enabled` beside `primary`."""
    problems = [
        f"externalCluster {c['name']!r} has no way to reach it"
        for c in spec.get("externalClusters", [])
        if not any(key in c for key in ("connectionParameters", "plugin", "barmanObjectStore"))
    ]
    replica = spec.get("replica")
    if replica is None:
        return problems
    names = {c["name"] for c in spec.get("externalClusters", [])}
    problems += [
        f"{field} {replica[field]!r} is no externalCluster"
        for field in ("source", "self", "primary")
        if replica.get(field) and replica[field] not in names
    ]
    if "enabled" in replica and "primary" in replica:
        problems.append("replica.enabled beside replica.primary")
    return problems


def test_the_webhook_model_refuses_what_cloudnativepg_refuses() -> None:
    assert webhook_problems({"replica": {"self": "a", "primary": "a", "source": "b"}, "externalClusters": []}) == [
        "source 'b' is no externalCluster",
        "self 'a' is no externalCluster",
        "primary 'a' is no externalCluster",
    ]
    assert webhook_problems({"externalClusters": [{"name": "dr"}]}) == ["externalCluster 'dr' has no way to reach it"]


@pytest.fixture(scope="module")
def states() -> dict[str, StackRun]:
    return {
        "prod": run_stack("prod"),
        "prod failed over": run_stack("prod", lease_reader=dr_holds),
        "prod rebuilt from dr": run_stack("prod", config_overrides=rebuilding(), lease_reader=dr_holds),
        "dr": run_stack("dr"),
        "dr promoted": run_stack("dr", lease_reader=dr_holds),
    }


def test_every_state_is_accepted_by_the_crds_and_the_webhook(states: dict[str, StackRun]) -> None:
    for state, run in states.items():
        spec = cluster(run).inputs["spec"]
        assert webhook_problems(spec) == [], state
        problems = {name: validate_manifest(m, "1.31") for name, m in kubernetes_objects(run)}
        assert {name: errors for name, errors in problems.items() if errors} == {}, state


def test_the_regions_agree_on_the_topology(states: dict[str, StackRun]) -> None:
    prod, dr = cluster(states["prod"]).inputs["spec"], cluster(states["dr"]).inputs["spec"]
    assert prod["replica"] == {"self": "primary", "primary": "primary", "source": "dr"}
    assert dr["replica"] == {"self": "dr", "primary": "primary", "source": "primary"}
    # prod's `dr` entry reads DR's own archive, under the name and path DR archives with.
    (prod_dr,) = [c for c in prod["externalClusters"] if c["name"] == "dr"]
    (dr_own,) = [c for c in dr["externalClusters"] if c["name"] == "dr"]
    assert prod_dr["plugin"]["parameters"] == dr_own["plugin"]["parameters"]
    assert DR_SERVER_NAME == PRIMARY_POSTGRES == cluster(states["dr"]).inputs["metadata"]["name"]

    def store(run: StackRun, name: str) -> dict[str, Any]:
        (found,) = [s for s in run.by_type(OBJECT_STORE) if s.inputs["metadata"]["name"] == name]
        configuration: dict[str, Any] = found.inputs["spec"]["configuration"]
        return configuration

    read = store(states["prod"], prod_dr["plugin"]["parameters"]["barmanObjectName"])
    written = store(states["dr"], dr_own["plugin"]["parameters"]["barmanObjectName"])
    assert read["destinationPath"] == written["destinationPath"] == "s3://sophia-prod-backups-replica/dr/postgres"
    assert read["endpointURL"] == written["endpointURL"]
    # prod reads it with its backup credentials, from the Secret; never inline.
    assert read["s3Credentials"]["accessKeyId"] == {"name": "backup-s3", "key": "ACCESS_KEY_ID"}
    # The promoter names DR the primary exactly as the dr stack then renders it.
    promoted = cluster(states["dr promoted"]).inputs["spec"]["replica"]
    assert {**promoted, **PROMOTION_PATCH["spec"]["replica"]} == promoted
    # The failback command needs the check the promoter pins (the runbook reads it from here).
    assert "primaryHealthCheckId" in states["dr"].outputs


def test_prod_after_a_failover_stays_fenced_and_named_primary(states: dict[str, StackRun]) -> None:
    """A prod that comes back must not take writes: fenced, and never demoted by this program (its
    timeline diverged from DR's; it is rebuilt instead)."""
    failed_over = cluster(states["prod failed over"])
    assert failed_over.inputs["metadata"]["annotations"][FENCED_INSTANCES] == '["*"]'
    assert failed_over.inputs["spec"]["replica"]["primary"] == "primary"
    assert "bootstrap" not in failed_over.inputs["spec"]


def test_prod_rebuilt_from_dr_is_a_replica_of_dr_and_nothing_fences_it(states: dict[str, StackRun]) -> None:
    run = states["prod rebuilt from dr"]
    rebuilt = cluster(run)
    spec = rebuilt.inputs["spec"]
    assert spec["bootstrap"] == {"recovery": {"source": "dr"}}
    assert spec["replica"] == {"self": "primary", "primary": "dr", "source": "dr"}
    assert FENCED_INSTANCES not in (rebuilt.inputs["metadata"].get("annotations") or {})
    # Its own archive carries on (the switchover archives the new timeline there).
    (archiver,) = spec["plugins"]
    assert archiver["isWALArchiver"] is True
    (guard,) = [d for d in run.by_type("kubernetes:apps/v1:Deployment") if "failover-guard" in d.name]
    (container,) = guard.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CLUSTER_ROLE"] == "replica"  # renews, never fences (failover/guard.sh)


def test_a_rebuilt_primary_archives_under_a_new_server_name_that_dr_and_the_checks_follow() -> None:
    """The Barman Cloud plugin refuses to archive into a server directory that holds WAL (its
    empty-archive check; CloudNativePG docs/src/recovery.md asks for a serverName per cluster): the
    rebuilt prod takes `archiveServerName`, and DR's fallback and both restore checks read it."""
    config, _ = read_stack_file("prod")
    data = json.loads(config["sophia:dataLayer"])
    data["postgres"]["archiveServerName"] = "postgres-2"
    run = run_stack("prod", config_overrides={"sophia:dataLayer": json.dumps(data)})
    spec = cluster(run).inputs["spec"]
    (archiver,) = spec["plugins"]
    assert archiver["parameters"]["serverName"] == "postgres-2"
    (own,) = [c for c in spec["externalClusters"] if c["name"] == "primary"]
    assert own["plugin"]["parameters"]["serverName"] == "postgres-2"
    assert run.outputs["postgresArchiveServerName"] == "postgres-2"
    assert restore_check_env(run, "postgres-restore-check")["SERVER_NAME"] == "postgres-2"
    data["postgres"]["archiveServerName"] = "Postgres_2"
    with pytest.raises(pulumi.RunError, match=r"dataLayer\.postgres\.archiveServerName"):
        run_stack("prod", config_overrides={"sophia:dataLayer": json.dumps(data)})


def test_dr_reads_prods_archive_under_the_server_name_prod_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PRIMARY_STACK_OUTPUTS, "postgresArchiveServerName", "postgres-7")
    dr = run_stack("dr")
    (source,) = [c for c in cluster(dr).inputs["spec"]["externalClusters"] if c["name"] == "primary"]
    assert source["plugin"]["parameters"]["serverName"] == "postgres-7"
    assert restore_check_env(dr, "postgres-restore-check")["SERVER_NAME"] == "postgres-7"
    # An older prod exports none: its archive is under the Cluster's name.
    monkeypatch.delitem(PRIMARY_STACK_OUTPUTS, "postgresArchiveServerName")
    (source,) = [c for c in cluster(run_stack("dr")).inputs["spec"]["externalClusters"] if c["name"] == "primary"]
    assert source["plugin"]["parameters"]["serverName"] == "postgres"


def test_a_rebuild_without_a_lease_table_is_refused_naming_the_key() -> None:
    config, _ = read_stack_file("prod")
    data = json.loads(config["sophia:dataLayer"])
    replication = data["postgres"]["drReplication"]
    replication["rebuildFromDr"] = True
    replication.pop("failoverLeaseTable", None)
    with pytest.raises(pulumi.RunError, match=r"drReplication\.rebuildFromDr.*failoverLeaseTable"):
        run_stack("prod", config_overrides={"sophia:dataLayer": json.dumps(data)})
