"""`RedisCluster`: Redis Cluster on Kubernetes, masters x (1 + replicas) pods, TLS everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.data.certificate import ServiceCertificate, ServiceCertificateArgs
from components.data.placement import SCRAPED, BackupSource, ScrapeTarget, StorePlacement, backup_jobs_ingress, labels
from components.data.redis_config import (
    BUS_PORT,
    CLIENT_PORT,
    RedisNodeConfig,
    RedisTls,
    render_auth_conf,
    render_redis_conf,
)
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
from settings.data import RedisSettings

REDIS_IMAGE = "redis:7.2.5"
EXPORTER_IMAGE = "oliver006/redis_exporter:v1.62.0"
REDIS_UID = 999  # the redis user of the official image
METRICS_PORT = 9121
TLS_DIR = "/etc/redis/tls"
AUTH_DIR = "/etc/redis/auth"


@dataclass(frozen=True)
class RedisClusterArgs:
    """Inputs of `RedisCluster`."""

    redis: RedisSettings
    """Masters, replicas per master and volume size (`sophia:dataLayer.redis`)."""
    placement: StorePlacement
    """Namespace, storage class, who may connect, protect."""
    memory: str = "2Gi"
    cpu: str = "500m"


class RedisCluster(pulumi.ComponentResource):
    """Client endpoint: `<name>.<namespace>.svc:6379` over TLS, password in Secret `<name>-auth`."""

    endpoint: str
    auth_secret_name: str

    def __init__(self, name: str, args: RedisClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:RedisCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.placement.namespace
        headless = f"{name}-headless"
        match = {"app.kubernetes.io/name": name}
        pod_labels = labels(name, "redis-cluster")
        replicas = args.redis.masters * (1 + args.redis.replicas_per_master)
        self.endpoint = f"{name}.{ns}.svc:{CLIENT_PORT}"
        self.scrape_target = ScrapeTarget(name, ns, {**labels(name, "redis-cluster"), **SCRAPED}, "metrics")
        self.auth_secret_name = f"{name}-auth"
        # The snapshot job asks the seed for the current masters, then reads each of them.
        self.backup_source = BackupSource(
            store=name,
            hosts=[
                f"{name}-{i}.{headless}.{ns}.svc"
                for i in range(args.redis.masters * (1 + args.redis.replicas_per_master))
            ],
            port=CLIENT_PORT,
            credentials=(self.auth_secret_name, "password"),
            ca_secret=f"{name}-tls",
            storage_gib=args.redis.storage_gib,
        )

        password = random.RandomPassword(f"{name}-password", length=40, special=False, opts=child)
        auth = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.auth_secret_name, namespace=ns, labels=pod_labels),
            string_data={
                "password": password.result,
                "auth.conf": password.result.apply(render_auth_conf),
            },
            opts=child,
        )
        certificate = ServiceCertificate(
            f"{name}-tls",
            ServiceCertificateArgs(
                namespace=ns,
                secret_name=f"{name}-tls",
                dns_names=[f"{name}.{ns}.svc", f"*.{headless}.{ns}.svc", f"{name}.{ns}.svc.cluster.local", "localhost"],
            ),
            child,
        )
        memory_mb = _mebibytes(args.memory)
        node_config = RedisNodeConfig(
            data_dir="/data",
            auth_include=f"{AUTH_DIR}/auth.conf",
            tls=RedisTls(f"{TLS_DIR}/tls.crt", f"{TLS_DIR}/tls.key", f"{TLS_DIR}/ca.crt"),
            maxmemory_mb=memory_mb * 3 // 4,  # room for AOF rewrites and replication buffers
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-config", namespace=ns, labels=pod_labels),
            data={"redis.conf": render_redis_conf(node_config)},
            opts=child,
        )
        k8s.core.v1.Service(
            headless,
            # The label ServiceMonitors select: the headless Service reaches every pod once.
            metadata=k8s.meta.v1.ObjectMetaArgs(name=headless, namespace=ns, labels={**pod_labels, **SCRAPED}),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                publish_not_ready_addresses=True,  # nodes must find each other before they are ready
                selector=match,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="redis", port=CLIENT_PORT),
                    k8s.core.v1.ServicePortArgs(name="bus", port=BUS_PORT),
                    k8s.core.v1.ServicePortArgs(name="metrics", port=METRICS_PORT),
                ],
            ),
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=match,
                ports=[k8s.core.v1.ServicePortArgs(name="redis", port=CLIENT_PORT)],
            ),
            opts=child,
        )
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{name}-config")
            ),
            k8s.core.v1.VolumeArgs(name="tls", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=f"{name}-tls")),
            k8s.core.v1.VolumeArgs(
                name="auth",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=self.auth_secret_name,
                    items=[k8s.core.v1.KeyToPathArgs(key="auth.conf", path="auth.conf")],
                ),
            ),
        ]
        password_env = secret_env("REDIS_PASSWORD", self.auth_secret_name, "password")
        cli = f'redis-cli --tls --cacert {TLS_DIR}/ca.crt --no-auth-warning -a "$REDIS_PASSWORD"'
        redis = k8s.core.v1.ContainerArgs(
            name="redis",
            image=REDIS_IMAGE,
            command=["redis-server", "/etc/redis/redis.conf"],
            args=[
                # Peers find a restarted pod by name, not by its new IP.
                "--cluster-announce-hostname",
                f"$(POD_NAME).{headless}.{ns}.svc",
                "--cluster-preferred-endpoint-type",
                "hostname",
            ],
            env=[
                k8s.core.v1.EnvVarArgs(
                    name="POD_NAME",
                    value_from=k8s.core.v1.EnvVarSourceArgs(
                        field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")
                    ),
                ),
                password_env,
            ],
            ports=[
                k8s.core.v1.ContainerPortArgs(name="redis", container_port=CLIENT_PORT),
                k8s.core.v1.ContainerPortArgs(name="bus", container_port=BUS_PORT),
            ],
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["sh", "-c", f"{cli} ping | grep -q PONG"]),
                period_seconds=5,
                timeout_seconds=3,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=CLIENT_PORT),
                initial_delay_seconds=15,
                period_seconds=10,
            ),
            resources=resources(args.cpu, args.memory, cpu_limit="2"),
            security_context=container_security(),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data"),
                k8s.core.v1.VolumeMountArgs(name="config", mount_path="/etc/redis/redis.conf", sub_path="redis.conf"),
                k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="auth", mount_path=AUTH_DIR, read_only=True),
            ],
        )
        exporter = k8s.core.v1.ContainerArgs(
            name="exporter",
            image=EXPORTER_IMAGE,
            env=[
                k8s.core.v1.EnvVarArgs(name="REDIS_ADDR", value=f"rediss://localhost:{CLIENT_PORT}"),
                k8s.core.v1.EnvVarArgs(name="REDIS_EXPORTER_TLS_CA_CERT_FILE", value=f"{TLS_DIR}/ca.crt"),
                k8s.core.v1.EnvVarArgs(name="REDIS_EXPORTER_IS_CLUSTER", value="true"),
                password_env,
            ],
            ports=[k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT)],
            resources=resources("50m", "64Mi", cpu_limit="200m"),
            security_context=container_security(),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True)],
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                replicas=replicas,
                service_name=headless,
                pod_management_policy="Parallel",
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                persistent_volume_claim_retention_policy=RETAIN_VOLUMES,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=pod_security(REDIS_UID),
                        affinity=spread_across_nodes(match),
                        termination_grace_period_seconds=30,
                        containers=[redis, exporter],
                        volumes=volumes,
                    ),
                ),
                volume_claim_templates=[
                    volume_claim("data", pod_labels, args.placement.storage_class, args.redis.storage_gib)
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.placement.protect, depends_on=[auth, config, certificate]
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=pod_labels),
            spec=one_unavailable(match),
            opts=child,
        )
        self._network_policy(name, args, match, pod_labels)
        self._cluster_job(
            name=name,
            args=args,
            replicas=replicas,
            headless=headless,
            cli=cli,
            volumes=volumes,
            password_env=password_env,
            pod_labels=pod_labels,
        )
        self.register_outputs({"endpoint": self.endpoint, "authSecret": self.auth_secret_name})

    def _network_policy(
        self, name: str, args: RedisClusterArgs, match: dict[str, str], pod_labels: dict[str, str]
    ) -> None:
        same_cluster = k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match)
        )
        tcp = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (CLIENT_PORT, BUS_PORT)]
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.placement.namespace, labels=pod_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[same_cluster], ports=tcp),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"app.kubernetes.io/name": f"{name}-create"}
                                )
                            )
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=CLIENT_PORT)],
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(n) for n in args.placement.client_namespaces],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=CLIENT_PORT)],
                    ),
                    backup_jobs_ingress(name, CLIENT_PORT),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(args.placement.monitoring_namespace)],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=METRICS_PORT)],
                    ),
                ],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[same_cluster], ports=tcp), dns_egress()],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cluster_job(
        self,
        *,
        name: str,
        args: RedisClusterArgs,
        replicas: int,
        headless: str,
        cli: str,
        volumes: list[k8s.core.v1.VolumeArgs],
        password_env: k8s.core.v1.EnvVarArgs,
        pod_labels: dict[str, str],
    ) -> None:
        hosts = " ".join(f"{name}-{i}.{headless}.{args.placement.namespace}.svc:{CLIENT_PORT}" for i in range(replicas))
        # Idempotent: once the first node knows every peer the cluster exists and the job just exits.
        first = f"{name}-0.{headless}.{args.placement.namespace}.svc"
        script = (
            f"for h in {hosts}; do "
            f"until {cli} -h ${{h%:*}} -p {CLIENT_PORT} ping | grep -q PONG; do sleep 2; done; done; "
            f"if {cli} -h {first} cluster info | grep -q 'cluster_known_nodes:{replicas}'; "
            f"then echo cluster exists; exit 0; fi; "
            f"{cli} --cluster create {hosts} --cluster-replicas {args.redis.replicas_per_master} --cluster-yes"
        )
        # Not the StatefulSet's name label: the Services must never route clients to this pod.
        job_labels = {
            **pod_labels,
            "app.kubernetes.io/name": f"{name}-create",
            "app.kubernetes.io/component": "cluster-create",
        }
        k8s.networking.v1.NetworkPolicy(
            f"{name}-create-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{name}-create", namespace=args.placement.namespace, labels=job_labels
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": f"{name}-create"}),
                policy_types=["Ingress", "Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"app.kubernetes.io/name": name}
                                )
                            )
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=CLIENT_PORT)],
                    ),
                    dns_egress(),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.batch.v1.Job(
            f"{name}-create",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{name}-create", namespace=args.placement.namespace, labels=job_labels
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=20,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=job_labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="OnFailure",
                        security_context=pod_security(REDIS_UID),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="create",
                                image=REDIS_IMAGE,
                                command=["sh", "-c", script],
                                env=[password_env],
                                resources=resources("50m", "64Mi", cpu_limit="200m"),
                                security_context=container_security(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True)
                                ],
                            )
                        ],
                        volumes=[v for v in volumes if v.name == "tls"],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.statefulset]),
        )


def _mebibytes(quantity: str) -> int:
    """'2Gi' -> 2048, '512Mi' -> 512."""
    if quantity.endswith("Gi"):
        return int(quantity[:-2]) * 1024
    if quantity.endswith("Mi"):
        return int(quantity[:-2])
    raise ValueError(f"memory must be given in Mi or Gi, got {quantity!r}")
