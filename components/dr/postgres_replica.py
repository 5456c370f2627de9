"""`PostgresReplica`: the DR region's PostgreSQL, a CloudNativePG replica cluster that streams
from the primary over TLS and authenticates as `streaming_replica` with a client certificate.

It bootstraps with `pg_basebackup` from the primary and then follows it by streaming replication
(not WAL-archive shipping), which is what keeps the lag in seconds. The DR promoter turns replica
mode off when it takes the primary role over (components/dr/promoter.py); from then on the lease
says DR holds the role and this component renders the cluster promoted, so a later `pulumi up`
keeps it the primary."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.data.placement import StorePlacement, labels
from components.data.postgres_cluster import (
    CNPG_NAMESPACE,
    POSTGRES_IMAGE,
    POSTGRES_PORT,
    STATUS_PORT,
    operator_manifests,
)
from components.data.postgres_config import replication_parameters
from components.kube import namespace_selector
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
    """Install CloudNativePG (`sophia:operators.cloudnativePg`); the replica takes no backups, so no plugin."""


def replica_cluster_spec(args: PostgresReplicaArgs, hostname: str) -> dict[str, object]:
    """The Cluster spec (pure, for tests) with `hostname` as the primary's address."""
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


class PostgresReplica(pulumi.ComponentResource):
    """Read-only endpoint `<name>-ro.<namespace>.svc:5432` while a replica; `<name>-rw` once promoted."""

    def __init__(self, name: str, args: PostgresReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:PostgresReplica", name, None, opts)
        self.cluster_name = name
        ns = args.placement.namespace
        child = pulumi.ResourceOptions(parent=self)
        operators = (
            operator_manifests(name, args.placement.protect, self, barman_plugin=False) if args.install_operator else []
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
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns, labels=labels(name, "postgres-replica")),
            spec=pulumi.Output.from_input(args.primary.hostname).apply(lambda host: replica_cluster_spec(args, host)),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.placement.protect, depends_on=[*operators, client, server_ca]
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
                ],
            ),
            opts=child,
        )
        self.read_only_endpoint = f"{name}-ro.{ns}.svc:{POSTGRES_PORT}"
        self.register_outputs({"readOnly": self.read_only_endpoint})
