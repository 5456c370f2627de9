"""`PostgresReplica`: the DR region's PostgreSQL, a CloudNativePG replica cluster that streams
from the primary over TLS and authenticates as `streaming_replica` with a client certificate.

It bootstraps with `pg_basebackup` from the primary and then follows it by streaming replication
(not WAL-archive shipping), which is what keeps the lag in seconds. The primary's WAL archive,
copied into this region's replica bucket, is the fallback after a long disconnect: CloudNativePG's
designated primary cannot hold a replication slot on its source, so streaming resumes only from
what the primary's `wal_keep_size` kept, and from the archive beyond that, never by re-cloning.

The two regions form one CloudNativePG distributed topology (`replica.self` / `replica.primary`):
this cluster is `dr`, prod's is `primary`, and `replica.primary` names the one that takes writes.
The DR promoter sets it to `dr` when it takes the primary role over (components/dr/promoter.py);
from then on the lease says DR holds the role and this component renders the same, so a later
`pulumi up` keeps it the primary. Unlike a standalone replica (`replica.enabled: false`, which
CloudNativePG cannot turn back), the topology lets failback be a controlled switchover: demote
here (a demotion token), promote prod with it, and this cluster follows prod again without a
re-clone (docs/runbooks/dr-failover.md). This cluster archives its own WAL (and, while primary,
takes daily base backups) under `dr/postgres` of the replica bucket: what prod is rebuilt from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.data.placement import StorePlacement, labels
from components.data.postgres_cluster import (
    BARMAN_PLUGIN,
    CNPG_NAMESPACE,
    DR_ARCHIVE_PREFIX,
    DR_ARCHIVE_STORE,
    DR_SERVER_NAME,
    DR_TOPOLOGY_NAME,
    POSTGRES_IMAGE,
    POSTGRES_PORT,
    PRIMARY_TOPOLOGY_NAME,
    STATUS_PORT,
    object_store,
    operator_manifests,
)
from components.data.postgres_config import replication_parameters
from components.kube import namespace_selector, pod_identity_egress
from settings.data import PostgresSettings

SOURCE = PRIMARY_TOPOLOGY_NAME
"""The primary's name in the distributed topology (an externalClusters entry in both regions)."""
SELF = DR_TOPOLOGY_NAME
"""This cluster's name in the topology."""
OWN_ARCHIVE_STORE = DR_ARCHIVE_STORE
"""This cluster's own object store (ObjectStore name here, and in prod when it rebuilds from DR)."""
OWN_ARCHIVE_PREFIX = DR_ARCHIVE_PREFIX
"""Where this cluster archives in the replica bucket: under `dr/`, the only prefix DR writes."""
CLIENT_SECRET = "primary-replication-tls"  # noqa: S105 - a Secret's name, not its value
SERVER_CA_SECRET = "primary-server-ca"  # noqa: S105 - a Secret's name, not its value


@dataclass(frozen=True)
class PrimaryEndpoint:
    """The primary's replication endpoint, read from the prod stack."""

    hostname: pulumi.Input[str]
    server_ca_pem: pulumi.Input[str]
    client_cert_pem: pulumi.Input[str]
    client_key_pem: pulumi.Input[str]
    """A Pulumi secret."""


@dataclass(frozen=True)
class PostgresReplicaArgs:
    """Inputs of `PostgresReplica`."""

    postgres: PostgresSettings
    """Instances and volume size (`sophia:dataLayer.postgres` of the dr stack)."""
    primary: PrimaryEndpoint
    placement: StorePlacement
    promote: bool
    """False: follow the primary. True: promoted, read-write (DR holds the lease)."""
    archive: WalArchive
    """Where the primary's WAL archive is copied in this region: the fallback when streaming can't
    resume from what the primary kept. Its bucket also holds this cluster's own archive
    (`OWN_ARCHIVE_PREFIX`)."""
    install_operator: bool = True
    """Install CloudNativePG (`sophia:operators.cloudnativePg`) and its Barman Cloud plugin."""
    retention_days: int = 7
    """How long this cluster's own backups and WAL are kept. They serve failback only (prod's
    archive is the one of record), and barman prunes WAL only with the backups it no longer needs."""


@dataclass(frozen=True)
class WalArchive:
    """The primary's barman object store, as S3 replication copies it into this region."""

    bucket: str
    """The replica bucket."""
    region: str
    prefix: str
    """The primary's `destinationPath` inside the bucket (`postgres`)."""
    server_name: pulumi.Input[str]
    """The primary's barman server name (prod's `dataLayer.postgres.archiveServerName`, read from its
    stack): a rebuilt primary archives under a new one."""


# CloudNativePG's Ready condition is True once the cluster's phase is healthy: bootstrap done and
# every instance up (pkg/resources/status/transactions.go SetClusterReadyCondition, v1.30.0).
WAIT_FOR_READY = {"pulumi.com/waitFor": "condition=Ready"}
# pg_basebackup across regions: assume at least 50 MiB/s, plus half an hour for everything else.
BOOTSTRAP_MIB_PER_SECOND = 50


def bootstrap_timeout_minutes(storage_gib: int) -> int:
    """How long `pulumi up` waits for a new replica to be Ready: a full copy of the volume."""
    return 30 + math.ceil(storage_gib * 1024 / BOOTSTRAP_MIB_PER_SECOND / 60)


def replica_cluster_spec(args: PostgresReplicaArgs, hostname: pulumi.Input[str]) -> dict[str, object]:
    """The Cluster spec (pure, for tests) with `hostname` as the primary's address; an Output there
    leaves only that field unknown at preview."""
    return {
        "instances": 1 + args.postgres.read_replicas,
        "imageName": POSTGRES_IMAGE,
        "storage": {"size": f"{args.postgres.storage_gib}Gi", "storageClass": args.placement.storage_class},
        "postgresql": {"parameters": replication_parameters()},
        "replica": {"self": SELF, "primary": SELF if args.promote else SOURCE, "source": SOURCE},
        "bootstrap": {"pg_basebackup": {"source": SOURCE}},
        "externalClusters": [
            {
                "name": SOURCE,
                "connectionParameters": {
                    "host": hostname,
                    "port": str(POSTGRES_PORT),
                    "user": "streaming_replica",
                    "dbname": "postgres",
                    "sslmode": "verify-full",
                },
                "sslCert": {"name": CLIENT_SECRET, "key": "tls.crt"},
                "sslKey": {"name": CLIENT_SECRET, "key": "tls.key"},
                "sslRootCert": {"name": SERVER_CA_SECRET, "key": "ca.crt"},
                "plugin": wal_archive_plugin(args.archive),
            },
            # The topology names itself too (CloudNativePG's webhook wants self, primary and source
            # among externalClusters): prod reads this entry's archive when it is rebuilt from DR.
            {"name": SELF, "plugin": own_archive_plugin()},
        ],
        "plugins": [own_archive_archiver()],
        "affinity": {
            "enablePodAntiAffinity": True,
            "topologyKey": "topology.kubernetes.io/zone",
            "podAntiAffinityType": "required",
        },
        "enablePDB": True,
        "monitoring": {"enablePodMonitor": False},
    }


# The Barman Cloud plugin's object store in this region: prod's archive as the replica bucket holds it.
ARCHIVE_STORE = "primary-archive"


def wal_archive_configuration(archive: WalArchive) -> dict[str, object]:
    """The ObjectStore's `configuration`: prod's `destinationPath` under the replica bucket, read
    with the pods' Pod Identity role (`inheritFromIAMRole`). No serverName here: the plugin takes it
    from the Cluster's parameters (a CEL rule of the ObjectStore CRD)."""
    return {
        "destinationPath": f"s3://{archive.bucket}/{archive.prefix}",
        "endpointURL": f"https://s3.{archive.region}.amazonaws.com",
        "s3Credentials": {"inheritFromIAMRole": True},
        "wal": {"maxParallel": 4},
    }


def wal_archive_plugin(archive: WalArchive) -> dict[str, object]:
    """The externalClusters `plugin` the designated primary's `restore_command` reads when streaming
    cannot resume (CloudNativePG's hybrid replica: streaming with the WAL archive as fallback; the
    plugin takes the store "from the externalClusters entry named by .spec.replica.source").
    serverName is prod's Cluster: its archive's directory."""
    return {"name": BARMAN_PLUGIN, "parameters": {"barmanObjectName": ARCHIVE_STORE, "serverName": archive.server_name}}


def own_archive_configuration(archive: WalArchive) -> dict[str, object]:
    """This cluster's own store: `OWN_ARCHIVE_PREFIX` of the replica bucket, written with the pods'
    Pod Identity role (which may write nothing else)."""
    return {
        **wal_archive_configuration(archive),
        "destinationPath": f"s3://{archive.bucket}/{OWN_ARCHIVE_PREFIX}",
        "wal": {"compression": "gzip", "maxParallel": 4},
        "data": {"compression": "gzip"},
    }


def own_archive_archiver() -> dict[str, object]:
    """The Cluster's `plugins` entry: CloudNativePG runs replica clusters with `archive_mode = always`,
    so the designated primary archives what it replays, and the primary once promoted what it writes."""
    return {"name": BARMAN_PLUGIN, "isWALArchiver": True, "parameters": {"barmanObjectName": OWN_ARCHIVE_STORE}}


def own_archive_plugin() -> dict[str, object]:
    """The `dr` externalClusters entry's plugin (serverName: this Cluster's name, in both regions)."""
    return {"name": BARMAN_PLUGIN, "parameters": {"barmanObjectName": OWN_ARCHIVE_STORE, "serverName": DR_SERVER_NAME}}


class PostgresReplica(pulumi.ComponentResource):
    """Read-only endpoint `<name>-ro.<namespace>.svc:5432` while a replica; `<name>-rw` once promoted."""

    def __init__(self, name: str, args: PostgresReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:PostgresReplica", name, None, opts)
        self.cluster_name = name
        ns = args.placement.namespace
        child = pulumi.ResourceOptions(parent=self)
        operators = (
            operator_manifests(name, args.placement.protect, self, barman_plugin=True) if args.install_operator else []
        )
        after_operators = pulumi.ResourceOptions(parent=self, depends_on=operators)
        archive: list[pulumi.Resource] = [
            object_store(
                f"{name}-{ARCHIVE_STORE}",
                ARCHIVE_STORE,
                namespace=ns,
                store_labels=labels(name, "postgres-replica"),
                spec={"configuration": wal_archive_configuration(args.archive)},
                opts=after_operators,
            ),
            object_store(
                f"{name}-{OWN_ARCHIVE_STORE}",
                OWN_ARCHIVE_STORE,
                namespace=ns,
                store_labels=labels(name, "backup"),
                spec={
                    "configuration": own_archive_configuration(args.archive),
                    "retentionPolicy": f"{args.retention_days}d",
                },
                opts=after_operators,
            ),
        ]
        client = k8s.core.v1.Secret(
            f"{name}-client-tls",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CLIENT_SECRET, namespace=ns),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": args.primary.client_cert_pem,
                "tls.key": pulumi.Output.secret(args.primary.client_key_pem),
            },
            opts=child,
        )
        server_ca = k8s.core.v1.Secret(
            f"{name}-server-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SERVER_CA_SECRET, namespace=ns),
            string_data={"ca.crt": args.primary.server_ca_pem},
            opts=child,
        )
        self.cluster = k8s.apiextensions.CustomResource(
            name,
            api_version="postgresql.cnpg.io/v1",
            kind="Cluster",
            # Wait for the replica to be Ready, so a broken bootstrap fails the update instead of
            # reporting success (pulumi-kubernetes provider/pkg/metadata/overrides.go ReadyCondition).
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=ns, labels=labels(name, "postgres-replica"), annotations=WAIT_FOR_READY
            ),
            spec=replica_cluster_spec(args, args.primary.hostname),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.placement.protect,
                depends_on=[*operators, *archive, client, server_ca],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{bootstrap_timeout_minutes(args.postgres.storage_gib)}m", update="30m"
                ),
            ),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"cnpg.io/cluster": name}),
                policy_types=["Ingress", "Egress"],
                # Like the primary's: Postgres from its own instances and the client namespaces, the
                # instance manager's status port from the operator; nothing from anywhere else.
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"cnpg.io/cluster": name})
                            ),
                            *(namespace_selector(n) for n in args.placement.client_namespaces),
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=POSTGRES_PORT)],
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(CNPG_NAMESPACE)],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=STATUS_PORT)],
                    ),
                ],
                # The primary (over the internet, TLS), the Kubernetes API and DNS.
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p)
                            for p in (POSTGRES_PORT, 443, 53)
                        ]
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53)]
                    ),
                    pod_identity_egress(),  # credentials for the WAL-archive fallback
                ],
            ),
            opts=child,
        )
        # Daily base backups into its own store, in every role: barman prunes WAL only with the backups
        # it no longer needs, so a store without backups would grow forever; and the day DR takes
        # writes, the backup failback rebuilds prod from is already there (CloudNativePG takes a
        # replica cluster's backups on its designated primary or a standby, docs/src/backup.md).
        k8s.apiextensions.CustomResource(
            f"{name}-daily",
            api_version="postgresql.cnpg.io/v1",
            kind="ScheduledBackup",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-daily", namespace=ns, labels=labels(name, "backup")),
            spec={
                "schedule": "0 0 4 * * *",  # seconds first: 04:00:00 daily, after prod's at 03:00
                "immediate": True,
                "cluster": {"name": name},
                "backupOwnerReference": "self",
                "method": "plugin",
                "pluginConfiguration": {"name": BARMAN_PLUGIN},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )
        self.read_only_endpoint = f"{name}-ro.{ns}.svc:{POSTGRES_PORT}"
        self.register_outputs({"readOnly": self.read_only_endpoint})
