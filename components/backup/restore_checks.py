"""`RestoreChecks`: the stores' snapshot jobs and the daily restore test of each store.

Postgres backs itself up (CloudNativePG: WAL archive and a daily base backup). Redis and Qdrant
get a nightly snapshot CronJob. Every store gets a restore-check CronJob that restores the latest
backup into a scratch instance inside its own pod (on a generic ephemeral volume of the
`<namespace>-scratch` StorageClass, reclaim policy Delete: the volume is made for the pod and goes
with it, so a finished job keeps no storage and no pod waits for a node with that much local disk),
checks it against the figures the source published, and pushes the result to the Pushgateway,
where the `RestoreVerification*` alerts watch it. The scripts in `components/backup/scripts/` are the
jobs' steps; the real-server tests run the Postgres and Redis ones as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.backup.bucket import POSTGRES_FIGURES_PREFIX, POSTGRES_PREFIX, REDIS_PREFIX
from components.data.placement import BACKUP_JOB_LABEL, PUSH_USER, RESTORE_CHECK_LABEL, BackupSource, StorePlacement
from components.data.postgres_cluster import POSTGRES_IMAGE
from components.data.qdrant_cluster import QDRANT_IMAGE
from components.data.redis_cluster import REDIS_IMAGE
from components.kube import AWS_CLI_IMAGE, container_security, dns_egress, pod_security, resources, secret_env
from settings.backup import BackupSettings, RestoreVerificationSettings
from settings.data import ScratchStorageSettings

SCRIPTS = Path(__file__).with_name("scripts")
POSTGRES_CHECK_SCRIPT = SCRIPTS / "postgres_restore_check.sh"
PUSH_RESULT_SCRIPT = SCRIPTS / "push_result.sh"
REDIS_SNAPSHOT_SCRIPT = SCRIPTS / "redis_snapshot.sh"
REDIS_CHECK_SCRIPT = SCRIPTS / "redis_restore_check.sh"
QDRANT_SNAPSHOT_SCRIPT = SCRIPTS / "qdrant_snapshot.sh"
QDRANT_CHECK_SCRIPT = SCRIPTS / "qdrant_restore_check.sh"
CURL_IMAGE = "curlimages/curl:8.11.1"
SCRIPTS_CONFIG_MAP = "backup-scripts"
POSTGRES_UID, REDIS_UID, QDRANT_UID = 26, 999, 1000  # the images' own users
PUSHGATEWAY_PORT = 9091
PUSH_SECRET = "pushgateway-push"  # noqa: S105 - a Secret's name, not its value
RESULT_FILE = "/results/result.prom"
FIGURES_DIR = "/scratch/figures"
# An emptyDir in the job's pod (root filesystems are read-only), not the host's /tmp.
POD_TMP = "/tmp"  # noqa: S108


@dataclass(frozen=True)
class RestoreChecksArgs:
    """Inputs of `RestoreChecks`."""

    verification: RestoreVerificationSettings
    """Schedule and tolerance (`sophia:monitoring.restoreVerification`)."""
    backups: BackupSettings
    """Bucket, region and snapshot schedule (`sophia:backups`)."""
    backup_secret_name: str
    """Secret with ACCESS_KEY_ID / ACCESS_SECRET_KEY of the backup writer."""
    placement: StorePlacement
    pushgateway_url: str
    push_password: pulumi.Input[str]
    """The Pushgateway password of `PUSH_USER` (a Pulumi secret), held only by the restore-check pods."""
    postgres: BackupSource
    redis: BackupSource
    qdrant: Sequence[BackupSource]
    scratch_storage: ScratchStorageSettings
    """The provisioner of the scratch volumes' StorageClass (`sophia:kubernetes.scratchStorage`)."""


def step_container(
    name: str,
    image: str,
    command: list[str],
    *,
    env: Mapping[str, pulumi.Input[str]],
    secret_envs: list[k8s.core.v1.EnvVarArgs],
    volumes: list[str],
    limits: k8s.core.v1.ResourceRequirementsArgs,
) -> k8s.core.v1.ContainerArgs:
    """One step of a backup job: restricted security context, the named volumes mounted."""
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=image,
        command=command,
        env=[*(k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()), *secret_envs],
        security_context=container_security(),
        resources=limits,
        volume_mounts=step_mounts(volumes),
    )


def redis_check_container(store: str, count_tolerance: float) -> k8s.core.v1.ContainerArgs:
    """The Redis restore check's step: load the fetched RDBs in a scratch server and compare (both regions)."""
    return step_container(
        "check",
        REDIS_IMAGE,
        ["bash", "/scripts/redis_restore_check.sh"],
        env={
            "SNAPSHOT_DIR": "/scratch/snapshot",
            "SCRATCH_DIR": "/scratch/run",
            "RESULT_FILE": RESULT_FILE,
            "COUNT_TOLERANCE": f"{count_tolerance:g}",
            "STORE": store,
        },
        secret_envs=[],
        volumes=["scripts", "scratch", "results"],
        limits=resources("500m", "2Gi", "2"),
    )


def step_mounts(names: Sequence[str]) -> list[k8s.core.v1.VolumeMountArgs]:
    paths = {"scripts": "/scripts", "scratch": "/scratch", "results": "/results", "ca": "/ca", "tmp": POD_TMP}
    return [k8s.core.v1.VolumeMountArgs(name=n, mount_path=paths[n], read_only=n in ("scripts", "ca")) for n in names]


@dataclass(frozen=True)
class Scratch:
    """A job's scratch volume: `gib` on StorageClass `storage_class` (one whose reclaim policy is Delete)."""

    gib: int
    storage_class: str


def job_volumes(
    ca_secret: str | None, scratch: Scratch | None = None, scripts_config_map: str = SCRIPTS_CONFIG_MAP
) -> list[k8s.core.v1.VolumeArgs]:
    """The volumes `step_mounts` names: scripts, results, tmp, the store's CA (if the job reaches
    the store), and scratch if any.

    Every one is gone with the pod: emptyDirs (each with a size limit and small), projections of a
    ConfigMap or Secret, and the scratch volume: a generic ephemeral volume, whose claim the pod
    owns (Kubernetes deletes it with the pod) on a class that deletes the volume with its claim."""
    volumes = [
        k8s.core.v1.VolumeArgs(
            name="scripts",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=scripts_config_map, default_mode=0o555),
        ),
        k8s.core.v1.VolumeArgs(name="results", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
    ]
    if ca_secret is not None:
        volumes.append(
            k8s.core.v1.VolumeArgs(
                name="ca",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=ca_secret, items=[k8s.core.v1.KeyToPathArgs(key="ca.crt", path="ca.crt")]
                ),
            )
        )
    if scratch is not None:
        claim = k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=scratch.storage_class,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{scratch.gib}Gi"}),
        )
        volumes.insert(
            1,
            k8s.core.v1.VolumeArgs(
                name="scratch",
                ephemeral=k8s.core.v1.EphemeralVolumeSourceArgs(
                    volume_claim_template=k8s.core.v1.PersistentVolumeClaimTemplateArgs(spec=claim)
                ),
            ),
        )
    return volumes


def scratch_storage_class(
    resource_name: str, class_name: str, settings: ScratchStorageSettings, opts: pulumi.ResourceOptions
) -> k8s.storage.v1.StorageClass:
    """The scratch volumes' class: deleted with their claim, made on the node the pod is scheduled to."""
    return k8s.storage.v1.StorageClass(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=class_name, labels={"app.kubernetes.io/part-of": "sophia"}),
        provisioner=settings.provisioner,
        parameters=dict(settings.parameters) or None,
        reclaim_policy="Delete",
        volume_binding_mode="WaitForFirstConsumer",
        opts=opts,
    )


def job_network_policy(
    resource_name: str,
    policy_name: str,
    namespace: str,
    egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Backup and restore job pods (labelled `BACKUP_JOB_LABEL`) take no traffic and reach only `egress`."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, namespace=namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(
                match_expressions=[k8s.meta.v1.LabelSelectorRequirementArgs(key=BACKUP_JOB_LABEL, operator="Exists")]
            ),
            policy_types=["Ingress", "Egress"],
            egress=egress,
        ),
        opts=opts,
    )


def qdrant_scratch_sidecar() -> k8s.core.v1.ContainerArgs:
    """The Qdrant restore check's scratch instance: a native sidecar (restartPolicy Always), up
    before the check starts, stopped when the pod ends."""
    return k8s.core.v1.ContainerArgs(
        name="scratch-qdrant",
        image=QDRANT_IMAGE,
        restart_policy="Always",
        env=[
            k8s.core.v1.EnvVarArgs(name="QDRANT__STORAGE__STORAGE_PATH", value="/scratch/storage"),
            k8s.core.v1.EnvVarArgs(name="QDRANT__STORAGE__SNAPSHOTS_PATH", value="/scratch/snapshots"),
            k8s.core.v1.EnvVarArgs(name="QDRANT__TELEMETRY_DISABLED", value="true"),
        ],
        startup_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=6333),
            period_seconds=2,
            failure_threshold=150,
        ),
        security_context=container_security(),
        resources=resources("1", "4Gi", "2"),
        volume_mounts=step_mounts(["scratch", "tmp"]),
    )


def cron_job_spec(
    schedule: str,
    pod_labels: Mapping[str, str],
    uid: int,
    *,
    init: list[k8s.core.v1.ContainerArgs],
    main: k8s.core.v1.ContainerArgs,
    volumes: list[k8s.core.v1.VolumeArgs],
    retries: int,
    service_account: str | None = None,
) -> k8s.batch.v1.CronJobSpecArgs:
    """A backup job's schedule: UTC, never two at once, kept three days, six hours at most;
    `service_account` where the job's AWS rights come from EKS Pod Identity."""
    return k8s.batch.v1.CronJobSpecArgs(
        schedule=schedule,
        time_zone="Etc/UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        job_template=k8s.batch.v1.JobTemplateSpecArgs(
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=retries,
                active_deadline_seconds=6 * 3600,
                ttl_seconds_after_finished=3 * 86400,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(pod_labels)),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=service_account,
                        restart_policy="Never",
                        security_context=pod_security(uid),
                        init_containers=init,
                        containers=[main],
                        volumes=volumes,
                    ),
                ),
            )
        ),
    )


class RestoreChecks(pulumi.ComponentResource):
    """CronJobs `<store>-snapshot` (Redis, Qdrant) and `<store>-restore-check` (every store)."""

    stores: list[str]

    def __init__(self, name: str, args: RestoreChecksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:backup:RestoreChecks", name, None, opts)
        self._args = args
        self._ns = args.placement.namespace
        self._child = pulumi.ResourceOptions(parent=self)
        self._scratch_class = f"{self._ns}-scratch"
        storage = scratch_storage_class(f"{name}-scratch", self._scratch_class, args.scratch_storage, self._child)
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SCRIPTS_CONFIG_MAP, namespace=self._ns),
            data={path.name: path.read_text(encoding="utf-8") for path in sorted(SCRIPTS.glob("*.sh"))},
            opts=self._child,
        )
        push = k8s.core.v1.Secret(
            f"{name}-push",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PUSH_SECRET, namespace=self._ns),
            string_data={"username": PUSH_USER, "password": pulumi.Output.secret(args.push_password)},
            opts=self._child,
        )
        self._after_scripts = pulumi.ResourceOptions(parent=self, depends_on=[scripts, push, storage])
        self._network_policy(name)
        self._postgres(args.postgres)
        self._redis(args.redis)
        for qdrant in args.qdrant:
            self._qdrant(qdrant)
        self.stores = [args.postgres.store, args.redis.store, *(q.store for q in args.qdrant)]
        self.register_outputs({"stores": self.stores})

    # -- the stores -------------------------------------------------------------------------

    def _postgres(self, source: BackupSource) -> None:
        args = self._args
        dsn = (
            f"host={source.hosts[0]} port={source.port} user=app dbname=app sslmode=verify-full sslrootcert=/ca/ca.crt"
        )
        check = step_container(
            "check",
            POSTGRES_IMAGE,
            ["bash", "/scripts/postgres_restore_check.sh"],
            env={
                "SOURCE_DSN": dsn,
                "SCRATCH_DB": "app",
                "BARMAN_DESTINATION": f"s3://{args.backups.s3_bucket}/{POSTGRES_PREFIX.rstrip('/')}",
                "SERVER_NAME": source.server_name or source.store,
                "SCRATCH_DIR": "/scratch",
                "FIGURES_DIR": FIGURES_DIR,
                "RESULT_FILE": RESULT_FILE,
                "COUNT_TOLERANCE": f"{args.verification.count_tolerance:g}",
                "STORE": source.store,
                "HOME": POD_TMP,
            },
            secret_envs=[secret_env("PGPASSWORD", *source.credentials), *self._aws_env()],
            volumes=["scripts", "scratch", "results", "ca", "tmp"],
            limits=resources("500m", "1Gi", "2"),
        )
        # The figures the check saw go next to the backups: the DR region checks its copy against them.
        figures = self._aws_step(
            "upload-figures",
            "upload_snapshot.sh",
            {
                "SOURCE_DIR": FIGURES_DIR,
                "DESTINATION": f"s3://{args.backups.s3_bucket}/{POSTGRES_FIGURES_PREFIX}{source.store}",
                "SKIP_IF_EMPTY": "1",
            },
        )
        self._cron_job(
            f"{source.store}-restore-check",
            source,
            args.verification.schedule,
            POSTGRES_UID,
            init=[check, figures],
            main=self._report(source),
        )

    def _redis(self, source: BackupSource) -> None:
        args = self._args
        destination = f"s3://{args.backups.s3_bucket}/{REDIS_PREFIX}{source.store}"
        snapshot = step_container(
            "snapshot",
            REDIS_IMAGE,
            ["bash", "/scripts/redis_snapshot.sh"],
            env={
                "REDIS_SEED": f"{source.hosts[0]}:{source.port}",
                # The backup ACL user (BackupSource.credentials is its password).
                "REDIS_CLI_OPTIONS": "--tls --cacert /ca/ca.crt --user backup --no-auth-warning",
                "SNAPSHOT_DIR": "/scratch/snapshot",
            },
            secret_envs=[secret_env("REDISCLI_AUTH", *source.credentials)],
            volumes=["scripts", "scratch", "ca"],
            limits=resources("100m", "256Mi", "1"),
        )
        upload = self._aws_step(
            "upload",
            "upload_snapshot.sh",
            {"SOURCE_DIR": "/scratch/snapshot", "DESTINATION": destination},
        )
        self._cron_job(
            f"{source.store}-snapshot", source, args.backups.snapshot_schedule, REDIS_UID, init=[snapshot], main=upload
        )
        fetch = self._aws_step(
            "fetch", "fetch_snapshot.sh", {"DESTINATION": destination, "TARGET_DIR": "/scratch/snapshot"}
        )
        check = redis_check_container(source.store, args.verification.count_tolerance)
        self._cron_job(
            f"{source.store}-restore-check",
            source,
            args.verification.schedule,
            REDIS_UID,
            init=[fetch, check],
            main=self._report(source),
        )

    def _qdrant(self, source: BackupSource) -> None:
        args = self._args
        # Where Qdrant itself puts the collection snapshots (its snapshots_path), and the manifests beside them.
        assert source.object_prefix is not None, "QdrantCluster gives its snapshot key prefix"
        prefix = f"s3://{args.backups.s3_bucket}/{source.object_prefix}"
        snapshot = step_container(
            "snapshot",
            CURL_IMAGE,
            ["sh", "/scripts/qdrant_snapshot.sh"],
            env={
                "QDRANT_PEERS": " ".join(source.hosts),
                "QDRANT_CA": "/ca/ca.crt",
                "MANIFEST_FILE": "/scratch/manifest/manifest",
            },
            secret_envs=[secret_env("QDRANT_API_KEY", *source.credentials)],
            volumes=["scripts", "scratch", "ca"],
            limits=resources("50m", "64Mi", "500m"),
        )
        upload = self._aws_step(
            "upload",
            "upload_snapshot.sh",
            {"SOURCE_DIR": "/scratch/manifest", "DESTINATION": f"{prefix}/manifests"},
        )
        self._cron_job(
            f"{source.store}-snapshot", source, args.backups.snapshot_schedule, QDRANT_UID, init=[snapshot], main=upload
        )
        plan = self._aws_step(
            "plan",
            "qdrant_plan.sh",
            {"MANIFESTS": f"{prefix}/manifests", "SNAPSHOT_PREFIX": prefix, "PLAN_FILE": "/results/plan"},
        )
        scratch = qdrant_scratch_sidecar()
        check = step_container(
            "check",
            CURL_IMAGE,
            ["sh", "/scripts/qdrant_restore_check.sh"],
            env={
                "PLAN_FILE": "/results/plan",
                "RESULT_FILE": RESULT_FILE,
                "COUNT_TOLERANCE": f"{args.verification.count_tolerance:g}",
                "STORE": source.store,
            },
            secret_envs=[],
            volumes=["scripts", "results"],
            limits=resources("50m", "64Mi", "500m"),
        )
        self._cron_job(
            f"{source.store}-restore-check",
            source,
            args.verification.schedule,
            QDRANT_UID,
            init=[plan, scratch, check],
            main=self._report(source),
        )

    # -- building blocks --------------------------------------------------------------------

    def _aws_env(self) -> list[k8s.core.v1.EnvVarArgs]:
        secret = self._args.backup_secret_name
        return [
            secret_env("AWS_ACCESS_KEY_ID", secret, "ACCESS_KEY_ID"),
            secret_env("AWS_SECRET_ACCESS_KEY", secret, "ACCESS_SECRET_KEY"),
            k8s.core.v1.EnvVarArgs(name="AWS_DEFAULT_REGION", value=self._args.backups.s3_region),
        ]

    def _aws_step(self, step: str, script: str, env: Mapping[str, str]) -> k8s.core.v1.ContainerArgs:
        """An aws-cli step."""
        return step_container(
            step,
            AWS_CLI_IMAGE,
            ["sh", f"/scripts/{script}"],
            env={**env, "HOME": POD_TMP},
            secret_envs=self._aws_env(),
            volumes=["scripts", "scratch", "results", "tmp"],
            limits=resources("100m", "256Mi", "1"),
        )

    def _report(self, source: BackupSource) -> k8s.core.v1.ContainerArgs:
        """The main container of every restore check."""
        return step_container(
            "report",
            CURL_IMAGE,
            ["sh", "/scripts/push_result.sh"],
            env={"RESULT_FILE": RESULT_FILE, "PUSHGATEWAY_URL": self._args.pushgateway_url, "STORE": source.store},
            secret_envs=[
                secret_env("PUSH_USER", PUSH_SECRET, "username"),
                secret_env("PUSH_PASSWORD", PUSH_SECRET, "password"),
            ],
            volumes=["scripts", "results"],
            limits=resources("10m", "32Mi", "100m"),
        )

    def _cron_job(
        self,
        job: str,
        source: BackupSource,
        schedule: str,
        uid: int,
        *,
        init: list[k8s.core.v1.ContainerArgs],
        main: k8s.core.v1.ContainerArgs,
    ) -> None:
        pod_labels = {
            "app.kubernetes.io/name": job,
            "app.kubernetes.io/part-of": "sophia",
            BACKUP_JOB_LABEL: source.store,
            # Only restore checks report; snapshot jobs never reach the Pushgateway.
            **({RESTORE_CHECK_LABEL: "true"} if job.endswith("-restore-check") else {}),
        }
        k8s.batch.v1.CronJob(
            job,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=self._ns, labels=pod_labels),
            spec=cron_job_spec(
                schedule,
                pod_labels,
                uid,
                init=init,
                main=main,
                # A restore's scratch copy can be as large as one node's data.
                volumes=job_volumes(source.ca_secret, Scratch(source.storage_gib, self._scratch_class)),
                retries=0,
            ),
            opts=self._after_scripts,
        )

    def _network_policy(self, name: str) -> None:
        """Job pods take no traffic; they reach the stores, S3 and DNS; restore checks the Pushgateway too."""

        def tcp(*numbers: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
            return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=n) for n in numbers]

        args = self._args
        store_ports = sorted({args.postgres.port, args.redis.port, *(q.port for q in args.qdrant)})
        monitoring = args.placement.monitoring_namespace
        job_network_policy(
            f"{name}-network",
            "backup-jobs",
            self._ns,
            [
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())],
                    ports=tcp(*store_ports),
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=tcp(443)),  # S3
                dns_egress(),
            ],
            self._child,
        )
        pushgateway = k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": monitoring}),
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": "pushgateway"}),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-report-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="restore-check-report", namespace=self._ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={RESTORE_CHECK_LABEL: "true"}),
                policy_types=["Egress"],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[pushgateway], ports=tcp(PUSHGATEWAY_PORT))],
            ),
            opts=self._child,
        )
