"""RestoreChecks as the stacks render it: one restore check per store, snapshot jobs where the
store does not back itself up, and the same scripts the real-server tests run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.backup.restore_checks import SCRIPTS
from tools.harness import StackRun, run_stack

CRONJOB = "kubernetes:batch/v1:CronJob"
STORES = ["postgres", "qdrant-0", "qdrant-1", "qdrant-2", "redis"]


def cron_jobs(run: StackRun) -> dict[str, Mapping[str, Any]]:
    """The backup jobs: snapshots and restore checks (not the stores' own tls-rollout jobs)."""
    return {r.name: r.inputs["spec"] for r in run.by_type(CRONJOB) if not r.name.endswith("-tls-rollout")}


def pod(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    result: Mapping[str, Any] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return result


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_every_store_has_a_restore_check_and_the_snapshotted_ones_a_snapshot_job() -> None:
    jobs = cron_jobs(run_stack("prod"))
    assert sorted(n.removesuffix("-restore-check") for n in jobs if n.endswith("-restore-check")) == STORES
    assert sorted(n.removesuffix("-snapshot") for n in jobs if n.endswith("-snapshot")) == [
        "qdrant-0",
        "qdrant-1",
        "qdrant-2",
        "redis",
    ]
    for name, spec in jobs.items():
        assert spec["schedule"] == ("30 4 * * *" if name.endswith("-restore-check") else "0 2 * * *")
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0.0


def test_alerts_watch_exactly_the_checked_stores() -> None:
    run = run_stack("prod")
    rules = run.named("sophia-prod-monitoring-rules").inputs["spec"]["groups"]
    missing = sorted(
        r["labels"]["store"] for g in rules for r in g["rules"] if r.get("alert") == "RestoreVerificationMissing"
    )
    assert missing == STORES


def test_postgres_check_restores_from_where_the_cluster_archives() -> None:
    run = run_stack("prod")
    (cluster_resource,) = [r for r in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")]
    (plugin,) = cluster_resource.inputs["spec"]["plugins"]
    (store,) = run.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    assert plugin["parameters"]["barmanObjectName"] == store.inputs["metadata"]["name"]
    check_pod = pod(cron_jobs(run)["postgres-restore-check"])
    env = env_of(check_pod["initContainers"][0])
    assert env["BARMAN_DESTINATION"] == store.inputs["spec"]["configuration"]["destinationPath"]
    # The plugin's server name defaults to the Cluster's name, as in-tree backups did.
    assert "serverName" not in plugin["parameters"]
    assert env["SERVER_NAME"] == cluster_resource.inputs["metadata"]["name"] == "postgres"
    # The CA the check verifies the server with is in a Secret that exists: prod sets serverCASecret,
    # so CloudNativePG never creates `postgres-ca`.
    ca_volume = next(v for v in check_pod["volumes"] if v["name"] == "ca")
    assert ca_volume["secret"]["secretName"] == cluster_resource.inputs["spec"]["certificates"]["serverCASecret"]
    certificate = next(
        r
        for r in run.by_type("kubernetes:cert-manager.io/v1:Certificate")
        if r.name == "postgres-server-cert-certificate"
    )
    assert certificate.inputs["spec"]["secretName"] == ca_volume["secret"]["secretName"]
    assert env["PGPASSWORD"] == {"secretKeyRef": {"name": "postgres-app", "key": "password"}}
    assert "sslmode=verify-full" in env["SOURCE_DSN"]
    assert env["COUNT_TOLERANCE"] == "0.05"


def test_scratch_is_node_local_disk_sized_like_a_node_and_requested() -> None:
    spec = pod(cron_jobs(run_stack("prod"))["postgres-restore-check"])
    scratch = next(v for v in spec["volumes"] if v["name"] == "scratch")
    assert scratch == {"name": "scratch", "emptyDir": {"sizeLimit": "500Gi"}}
    assert spec["containers"][0]["resources"]["requests"]["ephemeral-storage"] == "500Gi"


def test_the_config_map_carries_the_scripts_the_real_server_tests_run() -> None:
    config_map = run_stack("prod").named("sophia-prod-restore-checks-scripts")
    assert config_map.inputs["data"] == {p.name: p.read_text() for p in sorted(SCRIPTS.glob("*.sh"))}


def test_each_store_admits_its_own_jobs_on_its_client_port() -> None:
    run = run_stack("prod")
    policies = {r.name: r.inputs["spec"] for r in run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for store in STORES:
        template = cron_jobs(run)[f"{store}-restore-check"]["jobTemplate"]["spec"]["template"]
        label = template["metadata"]["labels"]["sophia.ai/backup-job"]
        assert label == store
        admitted = [
            rule
            for rule in policies[f"{store}-network"]["ingress"]
            if any(p.get("podSelector", {}).get("matchLabels") == {"sophia.ai/backup-job": store} for p in rule["from"])
        ]
        assert len(admitted) == 1, store


def test_qdrant_check_runs_its_scratch_instance_as_a_native_sidecar() -> None:
    init = pod(cron_jobs(run_stack("prod"))["qdrant-1-restore-check"])["initContainers"]
    assert [c["name"] for c in init] == ["plan", "scratch-qdrant", "check"]
    assert init[1]["restartPolicy"] == "Always"
