"""`PostgresReplica`: the DR region's PostgreSQL, a CloudNativePG replica cluster that streams
from the primary over TLS and authenticates as `streaming_replica` with a client certificate.

It bootstraps with `pg_basebackup` from the primary and then follows it by streaming replication
(not WAL-archive shipping), which is what keeps the lag in seconds. The primary's WAL archive,
copied into this region's replica bucket, is the fallback after a long disconnect: CloudNativePG's
designated primary cannot hold a replication slot on its source, so streaming resumes only from
what the primary's `wal_keep_size` kept, and from the archive beyond that, never by re-cloning.

The DR promoter turns replica mode off when it takes the primary role over
(components/dr/promoter.py); from then on the lease says DR holds the role and this component
renders the cluster promoted, so a later `pulumi up` keeps it the primary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.data.placement import StorePlacement, labels
from components.data.postgres_cluster import (
    BARMAN_PLUGIN,
    CNPG_NAMESPACE,
    POSTGRES_IMAGE,
    POSTGRES_PORT,
    STATUS_PORT,
    operator_manifests,
)
from components.data.postgres_config import replication_parameters
from components.kube import namespace_selector, pod_identity_egress
from settings.data import PostgresSettings

SOURCE = "primary"
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
    install_operator: bool = True
    """Install CloudNativePG (`sophia:operators.cloudnativePg`), and its Barman Cloud plugin when the
    replica reads the primary's archive (it takes no backups of its own)."""
    archive: WalArchive | None = None
    """Where the primary's WAL archive is copied in this region: the fallback when streaming can't
    resume from what the primary kept."""


@dataclass(frozen=True)
class WalArchive:
    """The primary's barman object store, as S3 replication copies it into this region."""

    bucket: str
    """The replica bucket."""
    region: str
    prefix: str
    """The primary's `destinationPath` inside the bucket (`postgres`)."""
    server_name: str
    """The primary's barman server name: its Cluster's name."""


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
        "replica": {"enabled": not args.promote, "source": SOURCE},
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
                **({"plugin": wal_archive_plugin(args.archive)} if args.archive else {}),
            }
        ],
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


class PostgresReplica(pulumi.ComponentResource):
    """Read-only endpoint `<name>-ro.<namespace>.svc:5432` while a replica; `<name>-rw` once promoted."""

    def __init__(self, name: str, args: PostgresReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:PostgresReplica", name, None, opts)
        self.cluster_name = name
        ns = args.placement.namespace
        child = pulumi.ResourceOptions(parent=self)
        operators = (
            operator_manifests(name, args.placement.protect, self, barman_plugin=args.archive is not None)
            if args.install_operator
            else []
        )
        archive: list[pulumi.Resource] = []
        if args.archive is not None:
            archive.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-{ARCHIVE_STORE}",
                    api_version="barmancloud.cnpg.io/v1",
                    kind="ObjectStore",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=ARCHIVE_STORE, namespace=ns, labels=labels(name, "postgres-replica")
                    ),
                    spec={"configuration": wal_archive_configuration(args.archive)},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=operators),
                )
            )
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
        self.read_only_endpoint = f"{name}-ro.{ns}.svc:{POSTGRES_PORT}"
        self.register_outputs({"readOnly": self.read_only_endpoint})
