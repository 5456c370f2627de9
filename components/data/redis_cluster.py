"""`RedisCluster`: Redis Cluster on Kubernetes, masters x (1 + replicas) pods, TLS everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    RedisUsers,
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

# Redis 8.10.2: the newest release line (8.10) and patch found when this was pinned; the real-server
# tests run Debian's redis-server 7.0 on the same redis.conf, ACL users and scripts.
REDIS_IMAGE = "redis:8.10.2"
# redis_exporter v1.88.0 (2026-07-23), the newest release; its README documents the ACL we grant it.
EXPORTER_IMAGE = "oliver006/redis_exporter:v1.88.0"
# The cluster Job's scaling steps talk to the Kubernetes API with curl (the image has a shell).
CURL_IMAGE = "curlimages/curl:8.11.1"
REDIS_UID = 999  # the redis user of the official image
METRICS_PORT = 9121
TLS_DIR = "/etc/redis/tls"
SCRIPTS = Path(__file__).with_name("scripts")
START_SCRIPT = SCRIPTS / "redis_start.sh"
"""The redis container's command: current peer addresses into nodes.conf, then redis-server."""
CLUSTER_SCRIPT = SCRIPTS / "redis_cluster.sh"
"""The cluster Job: create, grow, shrink, re-join replaced pods."""
TLS_RELOAD_SCRIPT = SCRIPTS / "redis_tls_reload.sh"
"""The tls-reload sidecar: a renewed certificate goes live with CONFIG SET, no restart."""
AUTH_DIR = "/etc/redis/auth"
LIVE_TLS_DIR = "/etc/redis/tls-live"
SCRIPTS_DIR = "/scripts"
USERS = ("admin", "exporter", "backup", "replication")
"""ACL users besides `default` (the applications'), each with `<user>-password` in Secret `<name>-auth`."""


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
    """Client endpoint: `<name>.<namespace>.svc:6379` over TLS; applications authenticate with the
    password alone (the `default` ACL user, key `password` of Secret `<name>-auth`)."""

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
            credentials=(self.auth_secret_name, "backup-password"),
            ca_secret=f"{name}-tls",
            storage_gib=args.redis.storage_gib,
        )

        # `<name>-password` stays the applications' password (the `default` user): clients keep working.
        password = random.RandomPassword(f"{name}-password", length=40, special=False, opts=child)
        others = {
            user: random.RandomPassword(f"{name}-{user}-password", length=40, special=False, opts=child).result
            for user in USERS
        }

        def conf(p: list[str]) -> str:
            return render_auth_conf(RedisUsers(app=p[0], admin=p[1], exporter=p[2], backup=p[3], replication=p[4]))

        # Passwords are Pulumi secrets, so the rendered file is one too.
        auth_conf: pulumi.Output[str] = pulumi.Output.all(password.result, *others.values()).apply(conf)
        auth = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.auth_secret_name, namespace=ns, labels=pod_labels),
            string_data={
                "password": password.result,
                **{f"{user}-password": value for user, value in others.items()},
                "auth.conf": auth_conf,
            },
            opts=child,
        )
        scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-scripts", namespace=ns, labels=pod_labels),
            data={path.name: path.read_text(encoding="utf-8") for path in sorted(SCRIPTS.glob("redis_*.sh"))},
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
                name="scripts",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{name}-scripts", default_mode=0o555),
            ),
            # Renewed certificates, copied here by the tls-reload sidecar and read by redis-server.
            k8s.core.v1.VolumeArgs(name="tls-live", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")),
            k8s.core.v1.VolumeArgs(
                name="auth",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=self.auth_secret_name,
                    items=[k8s.core.v1.KeyToPathArgs(key="auth.conf", path="auth.conf")],
                ),
            ),
        ]

        def password_of(user: str, env: str = "REDISCLI_AUTH") -> k8s.core.v1.EnvVarArgs:
            return secret_env(env, self.auth_secret_name, f"{user}-password")

        cli = f"redis-cli --tls --cacert {TLS_DIR}/ca.crt --no-auth-warning"
        field = k8s.core.v1.EnvVarSourceArgs
        redis = k8s.core.v1.ContainerArgs(
            name="redis",
            image=REDIS_IMAGE,
            # Current peer addresses into nodes.conf, then redis-server announcing this pod's address
            # and its stable name (components/data/scripts/redis_start.sh).
            command=["sh", f"{SCRIPTS_DIR}/{START_SCRIPT.name}"],
            env=[
                k8s.core.v1.EnvVarArgs(
                    name="POD_NAME",
                    value_from=field(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")),
                ),
                k8s.core.v1.EnvVarArgs(
                    name="POD_IP",
                    value_from=field(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="status.podIP")),
                ),
                k8s.core.v1.EnvVarArgs(name="ANNOUNCE_HOSTNAME", value=f"$(POD_NAME).{headless}.{ns}.svc"),
                k8s.core.v1.EnvVarArgs(name="REDIS_CONF", value="/etc/redis/redis.conf"),
                k8s.core.v1.EnvVarArgs(name="DATA_DIR", value="/data"),
                password_of("exporter"),  # the readiness probe's user
            ],
            ports=[
                k8s.core.v1.ContainerPortArgs(name="redis", container_port=CLIENT_PORT),
                k8s.core.v1.ContainerPortArgs(name="bus", container_port=BUS_PORT),
            ],
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["sh", "-c", f"{cli} --user exporter ping | grep -q PONG"]),
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
                k8s.core.v1.VolumeMountArgs(name="tls-live", mount_path=LIVE_TLS_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="auth", mount_path=AUTH_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_DIR, read_only=True),
            ],
        )
        # A certificate cert-manager renews goes live with CONFIG SET, without a restart.
        tls_reload = k8s.core.v1.ContainerArgs(
            name="tls-reload",
            image=REDIS_IMAGE,
            command=["sh", f"{SCRIPTS_DIR}/{TLS_RELOAD_SCRIPT.name}"],
            env=[
                k8s.core.v1.EnvVarArgs(name="TLS_DIR", value=TLS_DIR),
                k8s.core.v1.EnvVarArgs(name="LIVE_DIR", value=LIVE_TLS_DIR),
                k8s.core.v1.EnvVarArgs(name="REDIS_CLI_OPTIONS", value="--user admin --no-auth-warning"),
                password_of("admin"),
            ],
            resources=resources("10m", "32Mi", cpu_limit="100m"),
            security_context=container_security(),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="tls-live", mount_path=LIVE_TLS_DIR),
                k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_DIR, read_only=True),
            ],
        )
        exporter = k8s.core.v1.ContainerArgs(
            name="exporter",
            image=EXPORTER_IMAGE,
            env=[
                k8s.core.v1.EnvVarArgs(name="REDIS_ADDR", value=f"rediss://localhost:{CLIENT_PORT}"),
                k8s.core.v1.EnvVarArgs(name="REDIS_EXPORTER_TLS_CA_CERT_FILE", value=f"{TLS_DIR}/ca.crt"),
                k8s.core.v1.EnvVarArgs(name="REDIS_EXPORTER_IS_CLUSTER", value="true"),
                k8s.core.v1.EnvVarArgs(name="REDIS_USER", value="exporter"),
                password_of("exporter", "REDIS_PASSWORD"),
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
                        containers=[redis, tls_reload, exporter],
                        volumes=volumes,
                    ),
                ),
                volume_claim_templates=[
                    volume_claim("data", pod_labels, args.placement.storage_class, args.redis.storage_gib)
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.placement.protect,
                depends_on=[auth, config, scripts, certificate],
                # The cluster Job scales the StatefulSet: it drains pods before they go (see _cluster_job).
                ignore_changes=["spec.replicas"],
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
            name=name, args=args, replicas=replicas, headless=headless, volumes=volumes, pod_labels=pod_labels
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
        volumes: list[k8s.core.v1.VolumeArgs],
        pod_labels: dict[str, str],
    ) -> None:
        """The Job that shapes the cluster: create it, grow it, drain and shrink it, re-join replaced
        pods (components/data/scripts/redis_cluster.sh). Its pod template names the wanted size, so a
        change of `masters` or `replicasPerMaster` replaces the Job and it runs again. It owns the
        StatefulSet's scale: it adds pods before the cluster step, and removes pods only after the
        cluster step has moved their slots away and deleted their nodes."""
        ns = args.placement.namespace
        job = f"{name}-create"
        # Not the StatefulSet's name label: the Services must never route clients to this pod.
        job_labels = {**pod_labels, "app.kubernetes.io/name": job, "app.kubernetes.io/component": "cluster-create"}
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-cluster-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels),
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["apps"], resources=["statefulsets"], resource_names=[name], verbs=["get"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["apps"],
                    resources=["statefulsets/scale"],
                    resource_names=[name],
                    verbs=["get", "patch"],
                ),
            ],
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-cluster-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=job),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=job, namespace=ns)],
            opts=child,
        )
        tcp = k8s.networking.v1.NetworkPolicyPortArgs
        k8s.networking.v1.NetworkPolicy(
            f"{name}-create-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": job}),
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
                        ports=[tcp(protocol="TCP", port=CLIENT_PORT)],
                    ),
                    # The Kubernetes API (the scaling steps).
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[tcp(protocol="TCP", port=443), tcp(protocol="TCP", port=6443)]
                    ),
                    dns_egress(),
                ],
            ),
            opts=child,
        )
        scale_env = {"NAMESPACE": ns, "STATEFULSET": name, "WANT": str(replicas), "COUNT_FILE": "/work/pods"}
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_DIR, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="work", mount_path="/work"),
        ]

        def scale_step(mode: str) -> k8s.core.v1.ContainerArgs:
            return k8s.core.v1.ContainerArgs(
                name=f"scale-{'up' if mode == 'grow' else 'down'}",
                image=CURL_IMAGE,
                command=["sh", f"{SCRIPTS_DIR}/redis_scale.sh"],
                env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in {**scale_env, "MODE": mode}.items()],
                resources=resources("10m", "32Mi", cpu_limit="100m"),
                security_context=container_security(),
                volume_mounts=mounts,
            )

        cluster = k8s.core.v1.ContainerArgs(
            name="cluster",
            image=REDIS_IMAGE,
            command=["bash", f"{SCRIPTS_DIR}/{CLUSTER_SCRIPT.name}"],
            env=[
                k8s.core.v1.EnvVarArgs(name="MASTERS", value=str(args.redis.masters)),
                k8s.core.v1.EnvVarArgs(name="REPLICAS_PER_MASTER", value=str(args.redis.replicas_per_master)),
                k8s.core.v1.EnvVarArgs(name="PORT", value=str(CLIENT_PORT)),
                k8s.core.v1.EnvVarArgs(name="REDIS_HOST_PATTERN", value=f"{name}-%d.{headless}.{ns}.svc"),
                k8s.core.v1.EnvVarArgs(name="REDIS_POD_COUNT_FILE", value="/work/pods"),
                k8s.core.v1.EnvVarArgs(
                    name="REDIS_CLI_OPTIONS", value=f"--tls --cacert {TLS_DIR}/ca.crt --user admin --no-auth-warning"
                ),
                secret_env("REDISCLI_AUTH", self.auth_secret_name, "admin-password"),
            ],
            resources=resources("50m", "64Mi", cpu_limit="500m"),
            security_context=container_security(),
            volume_mounts=[*mounts, k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True)],
        )
        k8s.batch.v1.Job(
            job,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job, namespace=ns, labels=job_labels),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=20,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=job_labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="OnFailure",
                        service_account_name=job,
                        security_context=pod_security(REDIS_UID),
                        init_containers=[scale_step("grow"), cluster],
                        containers=[scale_step("shrink")],
                        volumes=[
                            *(v for v in volumes if v.name in ("tls", "scripts")),
                            k8s.core.v1.VolumeArgs(
                                name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Mi")
                            ),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.statefulset, account, role, binding]),
        )


def _mebibytes(quantity: str) -> int:
    """'2Gi' -> 2048, '512Mi' -> 512."""
    if quantity.endswith("Gi"):
        return int(quantity[:-2]) * 1024
    if quantity.endswith("Mi"):
        return int(quantity[:-2])
    raise ValueError(f"memory must be given in Mi or Gi, got {quantity!r}")
