"""`QdrantCluster`: one distributed Qdrant cluster (a StatefulSet of peers) with TLS and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components.data.certificate import ServiceCertificate, ServiceCertificateArgs
from components.data.placement import SCRAPED, BackupSource, ScrapeTarget, StorePlacement, backup_jobs_ingress, labels
from components.kube import (
    RETAIN_VOLUMES,
    container_security,
    dns_egress,
    namespace_selector,
    one_unavailable,
    pod_security,
    resources,
    secret_env,
    spread_across_nodes,
    volume_claim,
)
from settings.backup import BackupSettings
from settings.data import QdrantSettings

# Qdrant v1.19.0 (2026-08-04), the newest release; the unprivileged (non-root) build of it.
QDRANT_IMAGE = "qdrant/qdrant:v1.19.0-unprivileged"
CURL_IMAGE = "curlimages/curl:8.11.1"
TLS_ROLLOUT_SCRIPT = Path(__file__).with_name("scripts") / "tls_rollout.sh"
TLS_ROLLOUT_SCHEDULE = "*/15 * * * *"
"""How often the tls-rollout job compares the certificate the pods run with the renewed one."""
CERT_RELOAD_SECONDS = 3600
"""Qdrant re-reads its HTTPS certificate this often (`tls.cert_ttl`; gRPC and p2p need a restart)."""
QDRANT_UID = 1000  # the unprivileged image's user
HTTP_PORT, GRPC_PORT, P2P_PORT = 6333, 6334, 6335
TLS_DIR = "/qdrant/tls"


@dataclass(frozen=True)
class QdrantClusterArgs:
    """Inputs of `QdrantCluster`."""

    qdrant: QdrantSettings
    """Nodes per cluster, replication factor and volume size (`sophia:dataLayer.qdrant`)."""
    backups: BackupSettings
    backup_secret_name: str | None
    """Secret holding ACCESS_KEY_ID / ACCESS_SECRET_KEY for snapshot uploads; None where the node's
    IAM role grants S3 access (the DR region)."""
    placement: StorePlacement
    """Namespace, storage class, who may connect, protect."""
    memory: str = "4Gi"
    cpu: str = "1"
    snapshot_prefix: str = "qdrant"
    """Where in the bucket this cluster's snapshots go: `<prefix>/<name>/<collection>/<snapshot>`."""


def snapshots_path(prefix: str, cluster: str) -> str:
    """`storage.snapshots_path` of a cluster whose snapshots belong under `<prefix>/<cluster>/` in S3.

    Qdrant's S3 snapshot storage has no key prefix setting (`S3Config` in
    lib/collection/src/common/snapshots_manager.rs holds bucket, region, keys and endpoint only):
    the object key is the local snapshot path. A collection snapshot is written to
    `<snapshots_path>/<collection>/<collection>-<peer id>-<UTC %Y-%m-%d-%H-%M-%S>.snapshot` and that
    path becomes the key (`trim_dot_slash` in lib/collection/src/operations/snapshot_storage_ops.rs).
    So the local directory is named after the key prefix, and mounted where that path points.
    """
    return f"/{prefix.strip('/')}/{cluster}"


def object_key(path: str) -> str:
    """The S3 key Qdrant (v1.19.0) uses for the local snapshot `path`: `trim_dot_slash` strips
    leading `./`, then `object_store::path::Path::from` drops empty segments (a leading `/`)."""
    while path.startswith("./"):
        path = path[2:]
    return "/".join(part for part in path.split("/") if part)


def snapshot_key_prefix(prefix: str, cluster: str) -> str:
    """The S3 key prefix under which the cluster's collection snapshots are: `<prefix>/<cluster>`."""
    return object_key(snapshots_path(prefix, cluster))


def render_qdrant_config(settings: QdrantSettings, backups: BackupSettings, local_snapshots: str) -> str:
    """Qdrant's `production.yaml` (pure): distributed mode, TLS on every port, S3 snapshots whose keys
    start with `local_snapshots` (see `snapshots_path`)."""
    config = {
        "storage": {
            "storage_path": "/qdrant/storage",
            "snapshots_path": local_snapshots,
            "snapshots_config": {
                "snapshots_storage": "s3",
                "s3_config": {"bucket": backups.s3_bucket, "region": backups.s3_region},
            },
            # Defaults for new collections: every shard on `replication_factor` peers.
            "collection": {"replication_factor": settings.replication_factor, "write_consistency_factor": 1},
        },
        "service": {"http_port": HTTP_PORT, "grpc_port": GRPC_PORT, "enable_tls": True},
        "cluster": {"enabled": True, "p2p": {"port": P2P_PORT, "enable_tls": True}},
        "tls": {
            "cert": f"{TLS_DIR}/tls.crt",
            "key": f"{TLS_DIR}/tls.key",
            "ca_cert": f"{TLS_DIR}/ca.crt",
            "cert_ttl": CERT_RELOAD_SECONDS,
        },
        "telemetry_disabled": True,
    }
    return yaml.safe_dump(config, sort_keys=True)


class QdrantCluster(pulumi.ComponentResource):
    """HTTPS endpoint `<name>.<namespace>.svc:6333`, gRPC 6334; keys in Secret `<name>-keys`
    (`api-key` read-write, `read-only-api-key`)."""

    endpoint: str
    keys_secret_name: str

    def __init__(self, name: str, args: QdrantClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:QdrantCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.placement.namespace
        headless = f"{name}-headless"
        match = {"app.kubernetes.io/name": name}
        pod_labels = labels(name, "qdrant")
        self.endpoint = f"{name}.{ns}.svc:{HTTP_PORT}"
        # /metrics needs an API key: Prometheus sends the read-only one, and checks the TLS certificate.
        self.scrape_target = ScrapeTarget(
            name,
            ns,
            {**labels(name, "qdrant"), **SCRAPED},
            "http",
            tls_ca_secret=f"{name}-tls",
            tls_server_name=f"{name}.{ns}.svc",
            bearer_secret=(f"{name}-keys", "read-only-api-key"),
        )
        self.keys_secret_name = f"{name}-keys"
        local_snapshots = snapshots_path(args.snapshot_prefix, name)
        self.snapshot_key_prefix = object_key(local_snapshots)
        self.backup_source = BackupSource(
            store=name,
            hosts=[f"{name}-{i}.{name}-headless.{ns}.svc" for i in range(args.qdrant.nodes_per_cluster)],
            port=HTTP_PORT,
            credentials=(self.keys_secret_name, "api-key"),
            ca_secret=f"{name}-tls",
            storage_gib=args.qdrant.storage_gib,
            object_prefix=self.snapshot_key_prefix,
        )

        api_key = random.RandomPassword(f"{name}-api-key", length=40, special=False, opts=child)
        read_only_key = random.RandomPassword(f"{name}-read-only-key", length=40, special=False, opts=child)
        keys = k8s.core.v1.Secret(
            f"{name}-keys",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.keys_secret_name, namespace=ns, labels=pod_labels),
            string_data={"api-key": api_key.result, "read-only-api-key": read_only_key.result},
            opts=child,
        )
        certificate = ServiceCertificate(
            f"{name}-tls",
            ServiceCertificateArgs(
                namespace=ns,
                secret_name=f"{name}-tls",
                dns_names=[f"{name}.{ns}.svc", f"*.{headless}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"],
            ),
            child,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-config", namespace=ns, labels=pod_labels),
            data={"production.yaml": render_qdrant_config(args.qdrant, args.backups, local_snapshots)},
            opts=child,
        )
        ports = [
            k8s.core.v1.ServicePortArgs(name="http", port=HTTP_PORT),
            k8s.core.v1.ServicePortArgs(name="grpc", port=GRPC_PORT),
        ]
        k8s.core.v1.Service(
            headless,
            # The label ServiceMonitors select: the headless Service reaches every pod once.
            metadata=k8s.meta.v1.ObjectMetaArgs(name=headless, namespace=ns, labels={**pod_labels, **SCRAPED}),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                publish_not_ready_addresses=True,
                selector=match,
                ports=[*ports, k8s.core.v1.ServicePortArgs(name="p2p", port=P2P_PORT)],
            ),
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=match, ports=ports),
            opts=child,
        )

        peer = f"https://{name}-0.{headless}.{ns}.svc:{P2P_PORT}"
        # Peer 0 starts the cluster; every other peer joins through it. Names stay stable across restarts.
        start = (
            f'self="https://$(hostname).{headless}.{ns}.svc:{P2P_PORT}"; '
            f'if [ "$(hostname)" = "{name}-0" ]; then exec ./entrypoint.sh --uri "$self"; '
            f'else exec ./entrypoint.sh --bootstrap {peer} --uri "$self"; fi'
        )
        https_probe = k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=HTTP_PORT, scheme="HTTPS")
        container = k8s.core.v1.ContainerArgs(
            name="qdrant",
            image=QDRANT_IMAGE,
            command=["sh", "-c", start],
            env=[
                k8s.core.v1.EnvVarArgs(name="RUN_MODE", value="production"),
                secret_env("QDRANT__SERVICE__API_KEY", self.keys_secret_name, "api-key"),
                secret_env("QDRANT__SERVICE__READ_ONLY_API_KEY", self.keys_secret_name, "read-only-api-key"),
                *self._s3_credentials(args.backup_secret_name),
            ],
            ports=[
                k8s.core.v1.ContainerPortArgs(name="http", container_port=HTTP_PORT),
                k8s.core.v1.ContainerPortArgs(name="grpc", container_port=GRPC_PORT),
                k8s.core.v1.ContainerPortArgs(name="p2p", container_port=P2P_PORT),
            ],
            readiness_probe=k8s.core.v1.ProbeArgs(http_get=https_probe, period_seconds=5),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/livez", port=HTTP_PORT, scheme="HTTPS"),
                initial_delay_seconds=20,
                period_seconds=10,
            ),
            resources=resources(args.cpu, args.memory),
            security_context=container_security(),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="storage", mount_path="/qdrant/storage"),
                k8s.core.v1.VolumeMountArgs(name="snapshots", mount_path=local_snapshots),
                k8s.core.v1.VolumeMountArgs(
                    name="config", mount_path="/qdrant/config/production.yaml", sub_path="production.yaml"
                ),
                k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True),
            ],
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                replicas=args.qdrant.nodes_per_cluster,
                service_name=headless,
                pod_management_policy="Parallel",
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                persistent_volume_claim_retention_policy=RETAIN_VOLUMES,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=pod_security(QDRANT_UID),
                        affinity=spread_across_nodes(match),
                        containers=[container],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{name}-config"),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tls", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=f"{name}-tls")
                            ),
                            # Qdrant builds each snapshot here before its multipart upload to S3.
                            k8s.core.v1.VolumeArgs(
                                name="snapshots",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                                    size_limit=f"{args.qdrant.storage_gib}Gi"
                                ),
                            ),
                        ],
                    ),
                ),
                volume_claim_templates=[
                    volume_claim("storage", pod_labels, args.placement.storage_class, args.qdrant.storage_gib)
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.placement.protect, depends_on=[keys, config, certificate]
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=one_unavailable(match),
            opts=child,
        )
        self._network_policy(name, args, match, pod_labels)
        self._tls_rollout(name, args, pod_labels)
        self.register_outputs({"endpoint": self.endpoint, "keysSecret": self.keys_secret_name})

    def _tls_rollout(self, name: str, args: QdrantClusterArgs, pod_labels: dict[str, str]) -> None:
        """A renewed certificate reaches gRPC and p2p only through a restart: every 15 minutes a job
        compares the Secret's certificate with the one the pods started with and, when it differs,
        rolls the StatefulSet (one pod at a time, as its update strategy and PDB allow)."""
        ns = args.placement.namespace
        job = f"{name}-tls-rollout"
        job_labels = {**pod_labels, "app.kubernetes.io/name": job, "app.kubernetes.io/component": "tls-rollout"}
        child = pulumi.ResourceOptions(parent=self)
        meta = k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels)
        scripts = k8s.core.v1.ConfigMap(
            f"{job}-script", metadata=meta, data={TLS_ROLLOUT_SCRIPT.name: TLS_ROLLOUT_SCRIPT.read_text()}, opts=child
        )
        account = k8s.core.v1.ServiceAccount(f"{job}-account", metadata=meta, opts=child)
        role = k8s.rbac.v1.Role(
            f"{job}-role",
            metadata=meta,
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["secrets"], resource_names=[f"{name}-tls"], verbs=["get"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["apps"], resources=["statefulsets"], resource_names=[name], verbs=["get", "patch"]
                ),
            ],
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{job}-binding",
            metadata=meta,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=job),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=job, namespace=ns)],
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{job}-network",
            metadata=meta,
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": job}),
                policy_types=["Ingress", "Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (443, 6443)]
                    ),
                    dns_egress(),
                ],
            ),
            opts=child,
        )
        container = k8s.core.v1.ContainerArgs(
            name="rollout",
            image=CURL_IMAGE,
            command=["sh", f"/scripts/{TLS_ROLLOUT_SCRIPT.name}"],
            env=[
                k8s.core.v1.EnvVarArgs(name="NAMESPACE", value=ns),
                k8s.core.v1.EnvVarArgs(name="STATEFULSET", value=name),
                k8s.core.v1.EnvVarArgs(name="CERTIFICATE_NAME", value=f"{name}-tls"),
            ],
            resources=resources("10m", "32Mi", "100m"),
            security_context=container_security(),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="scripts", mount_path="/scripts", read_only=True)],
        )
        k8s.batch.v1.CronJob(
            job,
            metadata=meta,
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=TLS_ROLLOUT_SCHEDULE,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                successful_jobs_history_limit=1,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=600,
                        ttl_seconds_after_finished=3600,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=job_labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                restart_policy="Never",
                                service_account_name=job,
                                security_context=pod_security(QDRANT_UID),
                                containers=[container],
                                volumes=[
                                    k8s.core.v1.VolumeArgs(
                                        name="scripts",
                                        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=job, default_mode=0o555),
                                    )
                                ],
                            ),
                        ),
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scripts, account, role, binding]),
        )

    @staticmethod
    def _s3_credentials(secret: str | None) -> list[k8s.core.v1.EnvVarArgs]:
        if secret is None:
            return []
        return [
            secret_env("QDRANT__STORAGE__SNAPSHOTS_CONFIG__S3_CONFIG__ACCESS_KEY", secret, "ACCESS_KEY_ID"),
            secret_env("QDRANT__STORAGE__SNAPSHOTS_CONFIG__S3_CONFIG__SECRET_KEY", secret, "ACCESS_SECRET_KEY"),
        ]

    def _network_policy(
        self, name: str, args: QdrantClusterArgs, match: dict[str, str], pod_labels: dict[str, str]
    ) -> None:
        peers = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match))

        def tcp(*numbers: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
            return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=n) for n in numbers]

        k8s.networking.v1.NetworkPolicy(
            f"{name}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.placement.namespace, labels=pod_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[peers], ports=tcp(HTTP_PORT, GRPC_PORT, P2P_PORT)
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(n) for n in args.placement.client_namespaces],
                        ports=tcp(HTTP_PORT, GRPC_PORT),
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(args.placement.monitoring_namespace)], ports=tcp(HTTP_PORT)
                    ),
                    backup_jobs_ingress(name, HTTP_PORT),
                ],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[peers], ports=tcp(HTTP_PORT, GRPC_PORT, P2P_PORT)
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=tcp(443)),  # S3 snapshot uploads
                    dns_egress(),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
