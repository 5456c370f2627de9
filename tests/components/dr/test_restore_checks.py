"""Cross-region backup verification as the dr stack renders it: every primary store's backups
restored from the replica bucket, checked against what the primary published, reported to
CloudWatch and alarmed on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from components.dr.restore_checks import CHECK_SCRIPTS
from tools.harness import StackRun, run_stack

STORES = ["postgres", "qdrant-0", "qdrant-1", "qdrant-2", "redis"]
REPLICA = "s3://sophia-prod-backups-replica"


@pytest.fixture(scope="module")
def dr() -> StackRun:
    return run_stack("dr")


def checks(run: StackRun) -> dict[str, Mapping[str, Any]]:
    return {
        r.name.removesuffix("-restore-check"): r.inputs["spec"]
        for r in run.by_type("kubernetes:batch/v1:CronJob")
        if r.name.endswith("-restore-check")
    }


def pod(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    result: Mapping[str, Any] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return result


def env(container: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_every_primary_store_is_restore_checked_from_the_replica_bucket(dr: StackRun) -> None:
    jobs = checks(dr)
    assert sorted(jobs) == STORES
    for store, spec in jobs.items():
        assert spec["schedule"] == "30 7 * * *"
        spec_pod = pod(spec)
        assert spec_pod["serviceAccountName"] == "dr-backup-reader"  # Pod Identity: no keys anywhere
        containers = [*spec_pod["initContainers"], *spec_pod["containers"]]
        locations = [v for c in containers for k, v in env(c).items() if isinstance(v, str) and v.startswith("s3://")]
        assert locations, store
        assert all(v.startswith(f"{REPLICA}/") for v in locations), (store, locations)
        assert all(not isinstance(v, dict) for c in containers for v in env(c).values()), store  # no Secret refs
        # The job reaches no store: no CA mounted, no label a store's NetworkPolicy admits.
        assert "ca" not in {v["name"] for v in spec_pod["volumes"]}
        assert spec_pod["containers"][0]["command"] == ["sh", "/scripts/push_result_cloudwatch.sh"]


def test_postgres_is_checked_against_the_figures_prods_check_uploads(dr: StackRun) -> None:
    prod = run_stack("prod")
    (prod_check,) = [r for r in prod.by_type("kubernetes:batch/v1:CronJob") if r.name == "postgres-restore-check"]
    upload = next(c for c in pod(prod_check.inputs["spec"])["initContainers"] if c["name"] == "upload-figures")
    uploaded = env(upload)["DESTINATION"]
    assert uploaded == "s3://sophia-prod-backups/postgres-figures/postgres"
    init = {c["name"]: env(c) for c in pod(checks(dr)["postgres"])["initContainers"]}
    # The same key, in the replica bucket S3 replication copies it to.
    assert init["fetch-figures"]["DESTINATION"] == uploaded.replace(
        "sophia-prod-backups/", "sophia-prod-backups-replica/"
    )
    assert init["check"]["FIGURES_FILE"] == "/scratch/figures/figures"
    assert "SOURCE_DSN" not in init["check"]
    prod_env = env(next(c for c in pod(prod_check.inputs["spec"])["initContainers"] if c["name"] == "check"))
    assert init["check"]["BARMAN_DESTINATION"] == prod_env["BARMAN_DESTINATION"].replace(
        "sophia-prod-backups/", "sophia-prod-backups-replica/"
    )
    assert init["check"]["SERVER_NAME"] == prod_env["SERVER_NAME"]


def test_each_store_has_a_failure_and_a_staleness_alarm_in_the_dr_region(dr: StackRun) -> None:
    alarms = [a for a in dr.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "restore-checks" in a.name]
    by_store: dict[str, dict[str, Any]] = {}
    for alarm in alarms:
        assert alarm.inputs["namespace"] == "Sophia/RestoreVerification"
        by_store.setdefault(alarm.inputs["dimensions"]["Store"], {})[alarm.name.rsplit("-", 1)[1]] = alarm.inputs
    assert sorted(by_store) == STORES
    stale = by_store["postgres"]["stale"]
    assert (stale["evaluationPeriods"], stale["period"], stale["treatMissingData"]) == (30.0, 3600.0, "breaching")
    failed = by_store["postgres"]["failed"]
    assert (failed["statistic"], failed["treatMissingData"]) == ("Minimum", "notBreaching")
    (topic,) = dr.by_type("aws:sns/topic:Topic")
    assert all(topic.urn in a.property_dependencies["alarmActions"] for a in alarms)


def test_the_readers_role_reports_only_in_its_namespace_and_reads_the_figures(dr: StackRun) -> None:
    statements = json.loads(dr.named("sophia-dr-dr-eks-backup-reader-pods-policy").inputs["policy"])["Statement"]
    (metrics,) = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Sophia/RestoreVerification"}}
    (get,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert "arn:aws:s3:::sophia-prod-backups-replica/postgres-figures/*" in get["Resource"]


def test_the_config_map_carries_every_script_the_jobs_call(dr: StackRun) -> None:
    (config,) = [
        r
        for r in dr.by_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"] == "dr-restore-check-scripts"
    ]
    assert sorted(config.inputs["data"]) == sorted(CHECK_SCRIPTS)
    called = {
        part.rsplit("/", 1)[1]
        for spec in checks(dr).values()
        for c in [*pod(spec)["initContainers"], *pod(spec)["containers"]]
        for part in c.get("command", [])
        if part.startswith("/scripts/")
    }
    assert called <= set(CHECK_SCRIPTS)
