"""`PostgresCluster`: PostgreSQL on CloudNativePG, a primary plus streaming read replicas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.data.certificate import ServiceCertificate, ServiceCertificateArgs, leaf_secret_name
from components.data.placement import PLATFORM_RELABELING, BackupSource, StorePlacement, backup_jobs_ingress, labels
from components.data.postgres_config import replication_parameters, synchronous_replication
from components.kube import dns_egress, namespace_selector
from settings.backup import BackupSettings
from settings.data import DrReplicationSettings, PostgresSettings

# The operator's own release manifest, same version as the CRDs the objects are validated against.
CNPG_VERSION = "1.30.0"
CNPG_MANIFEST = (
    "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/"
    f"release-{CNPG_VERSION.rsplit('.', 1)[0]}/releases/cnpg-{CNPG_VERSION}.yaml"
)
CNPG_NAMESPACE = "cnpg-system"
# CloudNativePG's fencing annotation: a JSON list of instance names, "*" for all of them.
FENCED_INSTANCES = "cnpg.io/fencedInstances"
# The Barman Cloud plugin, which replaces the in-tree barmanObjectStore CloudNativePG 1.30 deprecates
# (to be removed in 1.31). Its release manifest; it needs cert-manager.
BARMAN_PLUGIN_VERSION = "v0.14.0"
BARMAN_PLUGIN_MANIFEST = (
    f"https://github.com/cloudnative-pg/plugin-barman-cloud/releases/download/{BARMAN_PLUGIN_VERSION}/manifest.yaml"
)
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
# PostgreSQL 15.18, the newest 15.x image CloudNativePG 1.30.0 tests against (.github/pg_versions.json);
# a move to 18 is a major upgrade (CloudNativePG's offline in-place upgrade), a change of its own.
# The `system` flavour carries barman-cloud, which the restore check runs.
POSTGRES_IMAGE = "ghcr.io/cloudnative-pg/postgresql:15.18-system-trixie"
POSTGRES_PORT = 5432
METRICS_PORT = 9187
STATUS_PORT = 8000  # the instance manager's status endpoint, polled by the operator
# The two regions' Clusters form one CloudNativePG distributed topology (replica.self/primary/source):
# `replica.primary` names the one that takes writes, and a switchover moves it with a demotion token.
PRIMARY_TOPOLOGY_NAME = "primary"
DR_TOPOLOGY_NAME = "dr"
DR_ARCHIVE_STORE = "dr-archive"
"""The DR Cluster's own object store: its ObjectStore's name there, and here when prod rebuilds from it."""
DR_ARCHIVE_PREFIX = "dr/postgres"
"""Where the DR Cluster archives, in the replica bucket (`sophia:backups.replicaBucket`)."""
DR_SERVER_NAME = "postgres"
"""The DR Cluster's name, its barman server name (components/dr/region.py names it so)."""


@dataclass(frozen=True)
class PostgresClusterArgs:
    """Inputs of `PostgresCluster`."""

    postgres: PostgresSettings
    """Read replicas and volume size (`sophia:dataLayer.postgres`)."""
    backups: BackupSettings
    """S3 destination of WAL and base backups (`sophia:backups`)."""
    backup_secret_name: str
    """Secret holding ACCESS_KEY_ID / ACCESS_SECRET_KEY (created by `DataNamespace`)."""
    placement: StorePlacement
    """Namespace, storage class, who may connect, protect."""
    install_operator: bool = True
    """Install CloudNativePG and its Barman Cloud plugin (`sophia:operators.cloudnativePg`)."""
    memory: str = "4Gi"
    cpu: str = "1"
    fenced: bool = False
    """DR holds the lease on the primary role: every instance stays fenced (no postmaster runs)."""
    rebuild_from_dr: bool = False
    """Failback: bootstrap from DR's backups and follow DR's archive (`drReplication.rebuildFromDr`)."""


CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def protect_crds(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """A `transforms` entry for an operator's manifest: its CustomResourceDefinitions are protected,
    nothing else in it is. Deleting a CRD deletes every object of its kind (every Postgres cluster);
    a Deployment, a webhook or an RBAC object must stay free to go, or an operator upgrade that drops
    or replaces one fails on it. The engine runs a component's transforms on every resource
    registered beneath it, the ConfigFile's children included (the provider registers them)."""
    if args.type_ != CRD_TYPE:
        return None
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True))
    )


def operator_manifests(
    name: str, protect: bool, parent: pulumi.Resource, *, barman_plugin: bool = True
) -> list[pulumi.Resource]:
    """CloudNativePG and the Barman Cloud plugin from their pinned release manifests.

    Every object of a manifest is kept in the cluster when it leaves the stack (`retainOnDelete`,
    which the engine passes from the ConfigFile to each child). Only the CRDs are protected, and
    only where data is (`protect_crds`): protect set on the ConfigFile itself would reach every
    child the same way, and an upgrade that removes or replaces a Deployment or webhook would fail."""
    keep = pulumi.ResourceOptions(
        parent=parent,
        # Explicitly false: a child inherits its parent's protect, and these must not.
        protect=False,
        retain_on_delete=True,
        transforms=[protect_crds] if protect else None,
    )
    operator = k8s.yaml.v2.ConfigFile(f"{name}-operator", file=CNPG_MANIFEST, opts=keep)
    if not barman_plugin:
        return [operator]
    plugin = k8s.yaml.v2.ConfigFile(
        f"{name}-barman-plugin",
        file=BARMAN_PLUGIN_MANIFEST,
        opts=pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[operator])),
    )
    return [operator, plugin]


@dataclass(frozen=True)
class ReplicationEndpoint:
    """What the DR region needs to stream from this cluster (prod exports it)."""

    hostname: str
    allowed_cidrs: Sequence[str]
    server_ca_pem: pulumi.Output[str]
    client_cert_pem: pulumi.Output[str]
    """streaming_replica's certificate."""
    client_key_pem: pulumi.Output[str]
    """Its key: a Pulumi secret."""
    certificates: dict[str, str]
    """The Cluster's `spec.certificates`."""


def object_store(
    resource_name: str,
    store: str,
    *,
    namespace: str,
    store_labels: dict[str, str],
    spec: dict[str, object],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """A Barman Cloud plugin ObjectStore named `store` (what a Cluster's plugin parameters name)."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="barmancloud.cnpg.io/v1",
        kind="ObjectStore",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=store, namespace=namespace, labels=store_labels),
        spec=spec,
        opts=opts,
    )


def secret_credentials(secret: str) -> dict[str, object]:
    """An ObjectStore's `s3Credentials` from a Secret holding ACCESS_KEY_ID and ACCESS_SECRET_KEY."""
    return {
        "accessKeyId": {"name": secret, "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": secret, "key": "ACCESS_SECRET_KEY"},
    }


def distributed_topology(name: str, server_name: str, *, rebuild_from_dr: bool) -> dict[str, object]:
    """prod's place in the topology: `primary`, taking writes; or, rebuilt from DR for failback,
    bootstrapped from DR's backups and following DR's archive until the switchover names it primary
    again (CloudNativePG's webhook wants self, primary and source among externalClusters)."""
    own = {"barmanObjectName": name, "serverName": server_name}
    dr = {"barmanObjectName": DR_ARCHIVE_STORE, "serverName": DR_SERVER_NAME}
    spec: dict[str, object] = {
        "replica": {
            "self": PRIMARY_TOPOLOGY_NAME,
            "primary": DR_TOPOLOGY_NAME if rebuild_from_dr else PRIMARY_TOPOLOGY_NAME,
            "source": DR_TOPOLOGY_NAME,
        },
        "externalClusters": [
            {"name": PRIMARY_TOPOLOGY_NAME, "plugin": {"name": BARMAN_PLUGIN, "parameters": own}},
            {"name": DR_TOPOLOGY_NAME, "plugin": {"name": BARMAN_PLUGIN, "parameters": dr}},
        ],
    }
    if rebuild_from_dr:
        spec["bootstrap"] = {"recovery": {"source": DR_TOPOLOGY_NAME}}
    return spec


class PostgresCluster(pulumi.ComponentResource):
    """Read-write endpoint `<name>-rw.<namespace>.svc:5432`, read-only `<name>-ro` (replicas only);
    CloudNativePG creates both Services and the `<name>-app` credentials Secret."""

    read_write_endpoint: str
    read_only_endpoint: str

    def __init__(self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:PostgresCluster", name, None, opts)
        ns = args.placement.namespace
        self.read_write_endpoint = f"{name}-rw.{ns}.svc:{POSTGRES_PORT}"
        self.read_only_endpoint = f"{name}-ro.{ns}.svc:{POSTGRES_PORT}"
        # The server certificate is ours (cert-manager, from the stack's CA), so its CA is in Secret
        # `<name>-server-tls-cert-manager` (ca.crt) in every stack; `<name>-app` holds the
        # application user's password.
        server_secret = leaf_secret_name(f"{name}-server-tls")
        self.backup_source = BackupSource(
            store=name,
            hosts=[f"{name}-rw.{ns}.svc"],
            port=POSTGRES_PORT,
            credentials=(f"{name}-app", "password"),
            ca_secret=server_secret,
            storage_gib=args.postgres.storage_gib,
            server_name=args.postgres.archive_server_name,
        )
        operators = operator_manifests(name, args.placement.protect, self) if args.install_operator else []
        self.server_certificate = self._server_certificate(name, args, f"{name}-server-tls")
        certificates = {"serverCASecret": server_secret, "serverTLSSecret": server_secret}
        self.replication: ReplicationEndpoint | None = None
        self.replication_service: k8s.core.v1.Service | None = None
        """The load balancer the DR region streams through, once `allowedCidrs` is set."""
        if args.postgres.dr_replication is not None:
            self.replication = self._replication_endpoint(name, args, args.postgres.dr_replication)
            certificates = self.replication.certificates
        store = object_store(
            f"{name}-object-store",
            name,
            namespace=ns,
            store_labels=labels(name, "backup"),
            spec={
                # The same destination and (default) server name the in-tree backups used: the plugin
                # carries on with the same archive.
                "configuration": {
                    "destinationPath": f"s3://{args.backups.s3_bucket}/postgres",
                    "s3Credentials": secret_credentials(args.backup_secret_name),
                    "wal": {"compression": "gzip", "maxParallel": 4},
                    "data": {"compression": "gzip"},
                },
                "retentionPolicy": f"{args.backups.retention_days}d",
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=operators),
        )
        topology: dict[str, object] = {}
        store_dependencies: list[pulumi.Resource] = [store]
        if args.postgres.dr_replication is not None:
            dr_store = self._dr_archive_store(name, args, operators)
            topology = distributed_topology(
                name, args.postgres.archive_server_name, rebuild_from_dr=args.rebuild_from_dr
            )
            store_dependencies.append(dr_store)
        instances = 1 + args.postgres.read_replicas
        synchronous = synchronous_replication(args.postgres.read_replicas)
        self.cluster = k8s.apiextensions.CustomResource(
            name,
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=ns,
                labels=labels(name, "postgres"),
                # After a failover the lease says DR holds the primary role: this program keeps the
                # old primary fenced, as its guard does, until failback gives the lease back.
                annotations={FENCED_INSTANCES: '["*"]'} if args.fenced else None,
            ),
            spec={
                "instances": instances,
                "imageName": POSTGRES_IMAGE,
                "primaryUpdateStrategy": "unsupervised",
                "storage": {"size": f"{args.postgres.storage_gib}Gi", "storageClass": args.placement.storage_class},
                "postgresql": {
                    "parameters": {
                        **replication_parameters(),
                        # What the DR replica may need after a disconnect (DrReplicationSettings.wal_keep_gib).
                        **(
                            {"wal_keep_size": f"{args.postgres.dr_replication.wal_keep_gib}GB"}
                            if args.postgres.dr_replication
                            else {}
                        ),
                    },
                    **({"synchronous": synchronous} if synchronous is not None else {}),
                },
                "resources": {
                    "requests": {"cpu": args.cpu, "memory": args.memory},
                    "limits": {"cpu": args.cpu, "memory": args.memory},
                },
                "affinity": {
                    "enablePodAntiAffinity": True,
                    "topologyKey": "kubernetes.io/hostname",
                    "podAntiAffinityType": "preferred",
                },
                "enablePDB": True,
                "monitoring": {"enablePodMonitor": True, "podMonitorRelabelings": [PLATFORM_RELABELING]},
                "certificates": certificates,
                # WAL archiving and base backups through the Barman Cloud plugin.
                "plugins": [
                    {
                        "name": BARMAN_PLUGIN,
                        "isWALArchiver": True,
                        "parameters": {"barmanObjectName": name, "serverName": args.postgres.archive_server_name},
                    }
                ],
                **topology,
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.placement.protect,
                depends_on=[*operators, *store_dependencies, self.server_certificate],
            ),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-daily",
            api_version="postgresql.cnpg.io/v1",
            kind="ScheduledBackup",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-daily", namespace=ns, labels=labels(name, "backup")),
            spec={
                "schedule": "0 0 3 * * *",  # CloudNativePG schedules have seconds: 03:00:00 daily
                "cluster": {"name": name},
                "backupOwnerReference": "self",
                "method": "plugin",
                "pluginConfiguration": {"name": BARMAN_PLUGIN},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )
        self._network_policy(name, args)
        self.register_outputs({"readWrite": self.read_write_endpoint, "readOnly": self.read_only_endpoint})

    def _dr_archive_store(
        self, name: str, args: PostgresClusterArgs, operators: Sequence[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        """DR's own archive as prod reads it: the replica bucket's `dr/postgres`, with the backup
        credentials, which must be allowed to read it when prod is rebuilt from DR
        (docs/runbooks/dr-failover.md). It exists whatever the role: the plugin resolves the
        `replica.source` entry's store on every start. No retention here: DR prunes its own store."""
        backups = args.backups
        if backups.replica_bucket is None or backups.replica_region is None:
            raise ValueError("sophia:backups.replicaBucket and replicaRegion are required with drReplication")
        return object_store(
            f"{name}-{DR_ARCHIVE_STORE}",
            DR_ARCHIVE_STORE,
            namespace=args.placement.namespace,
            store_labels=labels(name, "backup"),
            spec={
                "configuration": {
                    "destinationPath": f"s3://{backups.replica_bucket}/{DR_ARCHIVE_PREFIX}",
                    "endpointURL": f"https://s3.{backups.replica_region}.amazonaws.com",
                    "s3Credentials": secret_credentials(args.backup_secret_name),
                    "wal": {"maxParallel": 4},
                }
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(operators)),
        )

    def _server_certificate(self, name: str, args: PostgresClusterArgs, secret: str) -> ServiceCertificate:
        """The server certificate, issued and renewed by cert-manager from the stack's CA; CloudNativePG
        reloads the instances when the Secret changes (`cnpg.io/reload`). The CA is ours, not the
        operator's, so the restore check and the DR region can verify the server with it."""
        ns = args.placement.namespace
        services = [f"{name}-{kind}" for kind in ("rw", "r", "ro")]
        external = [args.postgres.dr_replication.hostname] if args.postgres.dr_replication else []
        return ServiceCertificate(
            f"{name}-server-cert",
            ServiceCertificateArgs(
                ns,
                secret,
                [*external, *(f"{svc}{suffix}" for svc in services for suffix in ("", f".{ns}", f".{ns}.svc"))],
                secret_labels={"cnpg.io/reload": "true"},
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _replication_endpoint(
        self, name: str, args: PostgresClusterArgs, settings: DrReplicationSettings
    ) -> ReplicationEndpoint:
        """A client CA of our own, so the DR region can authenticate as streaming_replica; and a
        source-restricted load balancer."""
        ns = args.placement.namespace
        server = self.server_certificate
        # Used by the DR region's replica (another cluster) as well: pulumi-tls issues it, and the
        # dr stack reads it from this stack's outputs.
        client = ServiceCertificate(
            f"{name}-replication-cert",
            ServiceCertificateArgs(
                ns,
                f"{name}-replication-tls",
                [],
                common_name="streaming_replica",
                issuer="pulumi",
                secret_labels={"cnpg.io/reload": "true"},
            ),
            pulumi.ResourceOptions(parent=self),
        )
        assert client.cert_pem is not None
        assert client.private_key_pem is not None
        # No allowed source yet (the DR NAT addresses exist only after the dr stack's first
        # `pulumi up`): no load balancer, since one with no source ranges admits everyone.
        self.replication_service = (
            None
            if not settings.allowed_cidrs
            else k8s.core.v1.Service(
                f"{name}-replication",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{name}-replication",
                    namespace=ns,
                    labels=labels(name, "postgres"),
                    annotations={"sophia.ai/hostname": settings.hostname},
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="LoadBalancer",
                    # Local keeps the client's address, which the NetworkPolicy and pg_hba see.
                    external_traffic_policy="Local",
                    load_balancer_source_ranges=list(settings.allowed_cidrs),
                    selector={"cnpg.io/cluster": name, "cnpg.io/instanceRole": "primary"},
                    ports=[k8s.core.v1.ServicePortArgs(name="postgres", port=POSTGRES_PORT)],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
        return ReplicationEndpoint(
            hostname=settings.hostname,
            allowed_cidrs=settings.allowed_cidrs,
            server_ca_pem=server.ca_cert_pem,
            client_cert_pem=client.cert_pem,
            client_key_pem=client.private_key_pem,
            certificates={
                "serverCASecret": server.secret_name,
                "serverTLSSecret": server.secret_name,
                "clientCASecret": client.secret_name,
                "replicationTLSSecret": client.secret_name,
            },
        )

    def _replication_ingress(self) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
        if self.replication is None:
            return []
        return [
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
                    for cidr in self.replication.allowed_cidrs
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=POSTGRES_PORT)],
            )
        ]

    def _network_policy(self, name: str, args: PostgresClusterArgs) -> None:
        instances = k8s.networking.v1.NetworkPolicyPeerArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"cnpg.io/cluster": name})
        )

        def port(number: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
            return k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=number)

        k8s.networking.v1.NetworkPolicy(
            f"{name}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=args.placement.namespace, labels=labels(name, "postgres")
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"cnpg.io/cluster": name}),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[instances], ports=[port(POSTGRES_PORT)]),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(n) for n in args.placement.client_namespaces],
                        ports=[port(POSTGRES_PORT)],
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(CNPG_NAMESPACE)], ports=[port(STATUS_PORT)]
                    ),
                    backup_jobs_ingress(name, POSTGRES_PORT),
                    *self._replication_ingress(),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(args.placement.monitoring_namespace)], ports=[port(METRICS_PORT)]
                    ),
                ],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[instances], ports=[port(POSTGRES_PORT)]),
                    # The Kubernetes API (instance manager) and S3 (WAL archive, base backups), both over 443.
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=[port(443), port(6443)]),
                    dns_egress(),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
