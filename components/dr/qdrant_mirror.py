"""`DrQdrant`: the DR region's Qdrant clusters, filled from the primary's snapshots.

The clusters mirror the primary's (same names, so the same peer host names). Every
`sophia:dr.qdrantRestoreSchedule` a CronJob per cluster reads the newest snapshot manifest the
primary's snapshot job wrote, which S3 replication has copied into the replica bucket, and
recovers each primary peer's snapshot on its DR namesake. Qdrant in DR is therefore as fresh as
the primary's last nightly snapshot: its RPO is the snapshot interval plus replication
(Replication Time Control: 15 minutes) plus the wait for the restore schedule."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.backup.bucket import QDRANT_PREFIX
from components.backup.restore_checks import (
    CURL_IMAGE,
    POD_TMP,
    SCRIPTS,
    SCRIPTS_CONFIG_MAP,
    cron_job_spec,
    job_network_policy,
    job_volumes,
    step_container,
)
from components.data.placement import BACKUP_JOB_LABEL, StorePlacement
from components.data.qdrant_cluster import QdrantCluster, QdrantClusterArgs, snapshot_key_prefix
from components.kube import AWS_CLI_IMAGE, resources, secret_env
from settings.backup import BackupSettings
from settings.data import QdrantSettings

QDRANT_UID = 1000


@dataclass(frozen=True)
class DrQdrantArgs:
    """Inputs of `DrQdrant`."""

    qdrant: QdrantSettings
    """Clusters and sizes (`sophia:dataLayer.qdrant` of the dr stack: the same as prod's)."""
    replica_bucket: BackupSettings
    """The prod replica bucket (read through the StackReference) in the DR region."""
    placement: StorePlacement
    schedule: str
    """`sophia:dr.qdrantRestoreSchedule`."""


class DrQdrant(pulumi.ComponentResource):
    """Clusters `qdrant-<n>` and CronJobs `qdrant-<n>-dr-restore`."""

    def __init__(self, name: str, args: DrQdrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Qdrant", name, None, opts)
        ns = args.placement.namespace
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SCRIPTS_CONFIG_MAP, namespace=ns),
            data={p.name: p.read_text(encoding="utf-8") for p in sorted(SCRIPTS.glob("qdrant_*.sh"))},
            opts=pulumi.ResourceOptions(parent=self),
        )
        bucket = f"s3://{args.replica_bucket.s3_bucket}"
        self.clusters = []
        for index in range(args.qdrant.clusters):
            cluster_name = f"qdrant-{index}"
            cluster = QdrantCluster(
                cluster_name,
                QdrantClusterArgs(
                    qdrant=args.qdrant,
                    backups=args.replica_bucket,
                    backup_secret_name=None,  # the nodes' IAM role
                    placement=args.placement,
                    snapshot_prefix="dr/qdrant",  # never over the primary's replicated snapshots
                ),
                pulumi.ResourceOptions(parent=self),
            )
            self.clusters.append(cluster)
            # The primary's namesake cluster wrote its snapshots here (replicated into this bucket).
            source = f"{bucket}/{snapshot_key_prefix(QDRANT_PREFIX, cluster_name)}"
            plan = step_container(
                "plan",
                AWS_CLI_IMAGE,
                ["sh", "/scripts/qdrant_plan.sh"],
                env={
                    "MANIFESTS": f"{source}/manifests",
                    "SNAPSHOT_PREFIX": source,
                    "PLAN_FILE": "/results/plan",
                    "AWS_DEFAULT_REGION": args.replica_bucket.s3_region,
                    "HOME": POD_TMP,
                },
                secret_envs=[],
                volumes=["scripts", "results", "tmp"],
                limits=resources("100m", "256Mi", "1"),
            )
            restore = step_container(
                "restore",
                CURL_IMAGE,
                ["sh", "/scripts/qdrant_dr_restore.sh"],
                env={"PLAN_FILE": "/results/plan", "QDRANT_CA": "/ca/ca.crt"},
                secret_envs=[secret_env("QDRANT_API_KEY", cluster.keys_secret_name, "api-key")],
                volumes=["scripts", "results", "ca"],
                limits=resources("50m", "64Mi", "500m"),
            )
            job = f"{cluster_name}-dr-restore"
            pod_labels = {"app.kubernetes.io/name": job, BACKUP_JOB_LABEL: cluster_name}
            k8s.batch.v1.CronJob(
                job,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=pod_labels),
                # One retry: unlike a restore check, a missed restore is worth a second try.
                spec=cron_job_spec(
                    args.schedule,
                    pod_labels,
                    QDRANT_UID,
                    init=[plan],
                    main=restore,
                    volumes=job_volumes(f"{cluster_name}-tls"),
                    retries=1,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scripts, cluster]),
            )
        self._network_policy(name, ns)
        self.register_outputs({"clusters": [c.endpoint for c in self.clusters]})

    def _network_policy(self, name: str, ns: str) -> None:
        """Restore jobs take no traffic; they reach the peers, S3 and DNS."""
        tcp = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (6333, 443, 53)]
        job_network_policy(
            f"{name}-jobs-network",
            "dr-restore-jobs",
            ns,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=tcp),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53)]
                ),
            ],
            pulumi.ResourceOptions(parent=self),
        )
