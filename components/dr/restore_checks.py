"""`DrRestoreChecks`: the primary's backups, restored in the DR region from the replica bucket.

The primary region tests its own backups (`RestoreChecks`); this tests the copy S3 replication
made, where a disaster would leave it: cross-region backup verification. Every store's newest
backup is restored inside the job's pod, from the replica bucket only, and checked against the
figures the primary published with the backup: the Redis and Qdrant snapshot manifests, and for
Postgres the figures file the primary's restore check uploads (its marker, which the restored
database must contain, and its row counts). No job reaches the primary or the DR stores.

Nothing here runs Prometheus, so each result goes to CloudWatch (`Sophia/RestoreVerification`,
dimension `Store`) and two alarms per store page through the region's alarm topic: a failed run,
and no success for `staleAfterHours`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.backup.bucket import POSTGRES_FIGURES_PREFIX, POSTGRES_PREFIX, QDRANT_PREFIX, REDIS_PREFIX
from components.backup.restore_checks import (
    CURL_IMAGE,
    POD_TMP,
    POSTGRES_UID,
    QDRANT_UID,
    REDIS_UID,
    RESULT_FILE,
    SCRIPTS,
    Scratch,
    cron_job_spec,
    job_network_policy,
    job_volumes,
    qdrant_scratch_sidecar,
    redis_check_container,
    step_container,
)
from components.data.placement import BACKUP_JOB_LABEL
from components.data.postgres_cluster import POSTGRES_IMAGE
from components.data.qdrant_cluster import snapshot_key_prefix
from components.kube import AWS_CLI_IMAGE, dns_egress, pod_identity_egress, resources
from settings.dr import DrRestoreCheckSettings

METRIC_NAMESPACE = "Sophia/RestoreVerification"
SCRIPTS_CONFIG_MAP = "dr-restore-check-scripts"
CHECK_SCRIPTS = (
    "fetch_snapshot.sh",
    "postgres_restore_check.sh",
    "push_result_cloudwatch.sh",
    "qdrant_plan.sh",
    "qdrant_restore_check.sh",
    "redis_restore_check.sh",
    "restore_result.sh",
)


@dataclass(frozen=True)
class CheckedStore:
    """One of the primary's stores, as its backups name it."""

    store: str
    """The primary's store name: its S3 prefix and the `Store` dimension."""
    kind: str
    """postgres, redis or qdrant."""
    storage_gib: int
    """One node's volume: the scratch space a restore needs."""
    server_name: pulumi.Input[str] | None = None
    """The barman server name its backups are under (Postgres), when it is not `store`."""


@dataclass(frozen=True)
class DrRestoreChecksArgs:
    """Inputs of `DrRestoreChecks`."""

    settings: DrRestoreCheckSettings
    """`sophia:dr.restoreChecks`."""
    bucket: str
    """The replica bucket."""
    region: str
    namespace: str
    scratch_storage_class: str
    """The class of the jobs' scratch volumes: one whose volumes are deleted with their claims."""
    service_account: str
    """Its Pod Identity role reads the primary's prefixes and puts the results' metrics."""
    stores: Sequence[CheckedStore]
    alarm_topic_arn: pulumi.Input[str]
    aws_provider: aws.Provider
    tags: Mapping[str, str]


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm on a store's `Success` metric (hourly periods)."""

    statistic: str
    evaluation_periods: int
    treat_missing_data: str
    description: str


def failed_alarm(store: str) -> AlarmSpec:
    """A run reported failure (Success 0) in the last hour; no run is not a failure here."""
    return AlarmSpec(
        "Minimum", 1, "notBreaching", f"The DR region's restore check of {store} failed on the replicated backups"
    )


def stale_alarm(store: str, hours: int) -> AlarmSpec:
    """No successful run for `hours`: every hourly period without a Success 1 breaches."""
    return AlarmSpec(
        "Maximum", hours, "breaching", f"No restore check of {store} has passed in the DR region for {hours} hours"
    )


class DrRestoreChecks(pulumi.ComponentResource):
    """CronJobs `<store>-restore-check` in the DR data namespace, and their alarms."""

    def __init__(self, name: str, args: DrRestoreChecksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:RestoreChecks", name, None, opts)
        self._args = args
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SCRIPTS_CONFIG_MAP, namespace=args.namespace),
            data={script: (SCRIPTS / script).read_text(encoding="utf-8") for script in CHECK_SCRIPTS},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._after_scripts = pulumi.ResourceOptions(parent=self, depends_on=[scripts])
        job_network_policy(
            f"{name}-network",
            "dr-restore-checks",
            args.namespace,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=443)]  # S3, CloudWatch
                ),
                pod_identity_egress(),
                dns_egress(),
            ],
            pulumi.ResourceOptions(parent=self),
        )
        for store in args.stores:
            init = {"postgres": self._postgres, "redis": self._redis, "qdrant": self._qdrant}[store.kind](store)
            uid = {"postgres": POSTGRES_UID, "redis": REDIS_UID, "qdrant": QDRANT_UID}[store.kind]
            self._cron_job(store, uid, init)
            self._alarms(name, store.store)
        self.stores = [s.store for s in args.stores]
        self.register_outputs({"stores": self.stores})

    # -- the stores -------------------------------------------------------------------------

    def _postgres(self, store: CheckedStore) -> list[k8s.core.v1.ContainerArgs]:
        args = self._args
        fetch = self._aws_step(
            "fetch-figures",
            "fetch_snapshot.sh",
            {"DESTINATION": self._s3(POSTGRES_FIGURES_PREFIX, store.store), "TARGET_DIR": "/scratch/figures"},
        )
        check = step_container(
            "check",
            POSTGRES_IMAGE,
            ["bash", "/scripts/postgres_restore_check.sh"],
            env={
                "FIGURES_FILE": "/scratch/figures/figures",
                "SCRATCH_DB": "app",
                "BARMAN_DESTINATION": f"s3://{args.bucket}/{POSTGRES_PREFIX.rstrip('/')}",
                "SERVER_NAME": store.server_name or store.store,
                "SCRATCH_DIR": "/scratch",
                "RESULT_FILE": RESULT_FILE,
                "COUNT_TOLERANCE": f"{args.settings.count_tolerance:g}",
                "STORE": store.store,
                "AWS_DEFAULT_REGION": args.region,
                "HOME": POD_TMP,
            },
            secret_envs=[],
            volumes=["scripts", "scratch", "results", "tmp"],
            limits=resources("500m", "1Gi", "2"),
        )
        return [fetch, check]

    def _redis(self, store: CheckedStore) -> list[k8s.core.v1.ContainerArgs]:
        fetch = self._aws_step(
            "fetch",
            "fetch_snapshot.sh",
            {"DESTINATION": self._s3(REDIS_PREFIX, store.store), "TARGET_DIR": "/scratch/snapshot"},
        )
        check = redis_check_container(store.store, self._args.settings.count_tolerance)
        return [fetch, check]

    def _qdrant(self, store: CheckedStore) -> list[k8s.core.v1.ContainerArgs]:
        # Where the primary's Qdrant put the snapshots (its snapshots_path), as replicated here.
        prefix = f"s3://{self._args.bucket}/{snapshot_key_prefix(QDRANT_PREFIX, store.store)}"
        plan = self._aws_step(
            "plan",
            "qdrant_plan.sh",
            {"MANIFESTS": f"{prefix}/manifests", "SNAPSHOT_PREFIX": prefix, "PLAN_FILE": "/results/plan"},
        )
        check = step_container(
            "check",
            CURL_IMAGE,
            ["sh", "/scripts/qdrant_restore_check.sh"],
            env={
                "PLAN_FILE": "/results/plan",
                "RESULT_FILE": RESULT_FILE,
                "COUNT_TOLERANCE": f"{self._args.settings.count_tolerance:g}",
                "STORE": store.store,
            },
            secret_envs=[],
            volumes=["scripts", "results"],
            limits=resources("50m", "64Mi", "500m"),
        )
        return [plan, qdrant_scratch_sidecar(), check]

    # -- building blocks --------------------------------------------------------------------

    def _s3(self, prefix: str, store: str) -> str:
        return f"s3://{self._args.bucket}/{prefix}{store}"

    def _aws_step(self, step: str, script: str, env: Mapping[str, str]) -> k8s.core.v1.ContainerArgs:
        # Credentials from the ServiceAccount's Pod Identity role; only the region is set here.
        return step_container(
            step,
            AWS_CLI_IMAGE,
            ["sh", f"/scripts/{script}"],
            env={**env, "AWS_DEFAULT_REGION": self._args.region, "HOME": POD_TMP},
            secret_envs=[],
            volumes=["scripts", "scratch", "results", "tmp"],
            limits=resources("100m", "256Mi", "1"),
        )

    def _cron_job(self, store: CheckedStore, uid: int, init: list[k8s.core.v1.ContainerArgs]) -> None:
        args = self._args
        job = f"{store.store}-restore-check"
        pod_labels = {"app.kubernetes.io/name": job, "app.kubernetes.io/part-of": "sophia", BACKUP_JOB_LABEL: job}
        report = self._aws_step(
            "report",
            "push_result_cloudwatch.sh",
            {"RESULT_FILE": RESULT_FILE, "NAMESPACE": METRIC_NAMESPACE, "STORE": store.store},
        )
        k8s.batch.v1.CronJob(
            job,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=args.namespace, labels=pod_labels),
            spec=cron_job_spec(
                args.settings.schedule,
                pod_labels,
                uid,
                init=init,
                main=report,
                # Scratch on the DR data key's Delete class, made for the pod and deleted with it, as
                # in the primary region (the DR nodes' root disks hold images and logs only).
                volumes=job_volumes(
                    None, Scratch(store.storage_gib, args.scratch_storage_class), scripts_config_map=SCRIPTS_CONFIG_MAP
                ),
                retries=0,
                service_account=args.service_account,
            ),
            opts=self._after_scripts,
        )

    def _alarms(self, name: str, store: str) -> None:
        args = self._args
        for kind, alarm in (
            ("failed", failed_alarm(store)),
            ("stale", stale_alarm(store, args.settings.stale_after_hours)),
        ):
            aws.cloudwatch.MetricAlarm(
                f"{name}-{store}-{kind}",
                alarm_description=alarm.description,
                namespace=METRIC_NAMESPACE,
                metric_name="Success",
                dimensions={"Store": store},
                statistic=alarm.statistic,
                period=3600,
                evaluation_periods=alarm.evaluation_periods,
                datapoints_to_alarm=alarm.evaluation_periods,
                comparison_operator="LessThanThreshold",
                threshold=1.0,
                treat_missing_data=alarm.treat_missing_data,
                alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn],
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, provider=args.aws_provider),
            )


def put_metrics_statement() -> dict[str, object]:
    """What the checks' role needs to report: PutMetricData, in their namespace only."""
    return {
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
    }
