"""The primary cluster and the data stores on it (`sophia:kubernetes`, `sophia:dataLayer`)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import Field, Strict, field_validator, model_validator

from settings.base import (
    NON_PUBLIC_NETWORKS,
    PositiveSeconds,
    SettingsModel,
    StorageGib,
    check_dns_name,
    check_dynamodb_table,
    check_hosted_zone,
    ipv4_network,
)
from settings.errors import RuleError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A provisioner: a CSI driver name (`ebs.csi.aws.com`) or a prefixed in-tree one (`rancher.io/local-path`).
_PROVISIONER = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")


class ScratchStorageSettings(SettingsModel):
    """The StorageClass the stack creates for the backup jobs' scratch volumes (`<dataNamespace>-scratch`,
    reclaim policy Delete, bound where the pod runs): each run claims a volume the size of one store
    node and the volume goes with the pod, so no run keeps storage and no pod waits for a node with
    that much free local disk."""

    provisioner: str = "rancher.io/local-path"
    """Who makes the volumes: k3s bundles `rancher.io/local-path` (a directory on the node's disk);
    any dynamic provisioner of the cluster works (e.g. its block-storage CSI driver)."""
    parameters: Annotated[dict[str, str], Field(default_factory=dict, max_length=16)]
    """The StorageClass's `parameters` for that provisioner (e.g. `type`, `encrypted`)."""

    @field_validator("provisioner")
    @classmethod
    def _provisioner(cls, value: str) -> str:
        """A provisioner name."""
        if not _PROVISIONER.match(value):
            raise ValueError(
                f"must be a provisioner name such as rancher.io/local-path or ebs.csi.aws.com, got {value!r}"
            )
        return value


class KubernetesSettings(SettingsModel):
    """The primary region's Kubernetes cluster, reached with the secret `sophia:kubeconfig`."""

    version: str
    """Cluster version (major.minor); objects are validated against its schemas."""
    storage_class: str
    """StorageClass for the data stores' volumes (its reclaim policy should be Retain)."""
    data_namespace: str = "sophia-data"
    """Namespace of the data stores; default-deny NetworkPolicy."""
    client_namespaces: Annotated[tuple[str, ...], Field(max_length=64)] = ("sophia-apps",)
    """Namespaces whose pods may reach the stores' client ports."""
    monitoring_namespace: str = "monitoring"
    """Namespace whose Prometheus may scrape the exporters."""
    scratch_storage: ScratchStorageSettings = ScratchStorageSettings()
    """Where the backup and restore-check jobs put their scratch copies."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        """A Kubernetes minor version 1.28 to 1.37."""
        match = re.fullmatch(r"1\.(\d+)", value)
        if match is None or not 28 <= int(match.group(1)) <= 37:
            raise ValueError(f"must be a supported Kubernetes minor version 1.28 to 1.37, got {value!r}")
        return value

    @field_validator("storage_class", "data_namespace", "monitoring_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        """A DNS label."""
        if not _DNS_LABEL.match(value):
            raise ValueError(f"must be a DNS label (lowercase letters, digits, dashes; at most 63), got {value!r}")
        return value

    @field_validator("client_namespaces")
    @classmethod
    def _dns_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """DNS labels."""
        for name in value:
            cls._dns_label(name)
        return value


class RedisSettings(SettingsModel):
    """Redis Cluster: shards (masters) and their replicas."""

    masters: Annotated[int, Strict(), Field(ge=3, le=64)]
    """Masters (hash-slot shards); Redis Cluster needs at least 3."""
    replicas_per_master: Annotated[int, Strict(), Field(ge=0, le=5)]
    """Replicas behind each master (0 only for throwaway environments)."""
    storage_gib: StorageGib
    """Persistent volume per node, GiB (AOF and RDB)."""


# How far the replica bucket's copy of the WAL archive may lag the primary: S3 Replication Time
# Control (15 minutes for 99.99 % of objects) plus CloudNativePG's default archive_timeout (5 minutes).
ARCHIVE_CATCH_UP_SECONDS = (15 + 5) * 60


class DrReplicationSettings(SettingsModel):
    """The endpoint the DR region's replica streams from (TLS, certificate authentication)."""

    hostname: str
    """DNS name of the replication load balancer; in the server certificate. This stack keeps its
    Route 53 record pointing at the load balancer."""
    hosted_zone_id: str
    """Route 53 hosted zone of `hostname`."""
    allowed_cidrs: Annotated[tuple[str, ...], Field(max_length=16)] = ()
    """The DR region's egress addresses (its NAT gateways: the dr stack's `drNatPublicIps`, /32
    each), known only after the dr stack's first `pulumi up`. Until set, the replication endpoint
    (load balancer, DNS record, Lambda firewall opening) is not created, and the dr stack stops
    naming this key."""
    lag_alert_seconds: PositiveSeconds = 5.0
    """Alert when the DR replica replays more than this far behind (the dr stack's RPO bound)."""
    peak_wal_mib_per_second: Annotated[float, Field(gt=0, le=1024, allow_inf_nan=False)] = 2.0
    """Peak rate the primary writes WAL at, MiB/s; sizes how much WAL it keeps for the DR replica."""

    @property
    def wal_keep_gib(self) -> int:
        """The primary's `wal_keep_size`. The DR replica streams without a replication slot on the
        primary (CloudNativePG's designated primary never uses one on its source), so after a
        disconnect it resumes from what `wal_keep_size` kept, or else from the WAL archive in the
        replica bucket, which lags the primary by up to S3 Replication Time Control's 15 minutes
        plus `archive_timeout` (5 minutes). Keeping that long at the peak rate means the archive
        always holds what the primary has let go: no re-clone over the internet."""
        return max(2, math.ceil(self.peak_wal_mib_per_second * ARCHIVE_CATCH_UP_SECONDS / 1024))

    failover_lease_table: str | None = None
    """The dr stack's lease table (its output `failoverLeaseTable`, in `backups.replicaRegion`). Set:
    the primary runs the failover guard, and stays fenced while DR holds the lease. Unset (before
    the dr stack exists): no guard runs, and DR never promotes by itself."""
    rebuild_from_dr: bool = False
    """Failback only (docs/runbooks/dr-failover.md): the Cluster, deleted beforehand, is recreated
    from the DR region's backups and follows DR's WAL archive as a replica until the switchover
    promotes it. Never fenced meanwhile; its guard renews the lease without fencing."""

    @model_validator(mode="after")
    def _rebuild_needs_the_lease(self) -> DrReplicationSettings:
        """There is something to fail back from only once DR can hold the lease."""
        if self.rebuild_from_dr and self.failover_lease_table is None:
            raise RuleError(
                [("rebuildFromDr", "is for failback after DR took the primary role; set failoverLeaseTable first")]
            )
        return self

    @field_validator("hostname")
    @classmethod
    def _host(cls, value: str) -> str:
        """A lowercase DNS name."""
        return check_dns_name(value)

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        """A Route 53 hosted zone id (Z...)."""
        return check_hosted_zone(value)

    @field_validator("failover_lease_table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        """A DynamoDB table name."""
        return None if value is None else check_dynamodb_table(value)

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """IPv4 CIDRs, each /24 or narrower, public."""
        for cidr in value:
            network = ipv4_network(cidr)
            if network.prefixlen < 24:
                raise ValueError(f"{cidr} is wider than /24: list the DR NAT addresses, not a whole range")
            if any(network.overlaps(block) for block in NON_PUBLIC_NETWORKS):
                raise ValueError(f"{cidr} is not a public network (the DR NAT gateways' addresses are public)")
        return value


class PostgresSettings(SettingsModel):
    """PostgreSQL: one primary plus streaming read replicas."""

    read_replicas: Annotated[int, Strict(), Field(ge=0, le=10)]
    """Streaming replicas serving the read-only endpoint."""
    storage_gib: StorageGib
    """Persistent volume per instance, GiB."""
    dr_replication: DrReplicationSettings | None = None
    """Lets the DR region stream from this cluster (prod)."""
    archive_server_name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = "postgres"
    """The barman server name the Cluster archives and backs up under (`s3://<bucket>/postgres/<name>`).
    A new Cluster over an old archive must take a new one (failback's rebuild from DR): the Barman
    Cloud plugin refuses to archive into a server directory that already holds WAL."""

    @model_validator(mode="after")
    def _wal_fits(self) -> PostgresSettings:
        """The WAL kept for the DR replica takes at most a quarter of the volume."""
        replication = self.dr_replication
        if replication is not None and replication.wal_keep_gib * 4 > self.storage_gib:
            raise RuleError(
                [
                    (
                        "drReplication.peakWalMibPerSecond",
                        f"keeps {replication.wal_keep_gib} GiB of WAL for the DR replica (20 minutes at "
                        f"{replication.peak_wal_mib_per_second:g} MiB/s), more than a quarter of storageGib "
                        f"({self.storage_gib})",
                    )
                ]
            )
        return self


class QdrantSettings(SettingsModel):
    """Qdrant: independent clusters, each of several nodes."""

    clusters: Annotated[int, Strict(), Field(ge=1, le=16)]
    """Number of independent Qdrant clusters."""
    nodes_per_cluster: Annotated[int, Strict(), Field(ge=1, le=64)]
    """Nodes in each cluster."""
    replication_factor: Annotated[int, Strict(), Field(ge=1, le=64)]
    """Copies of each shard; at most the number of nodes."""
    storage_gib: StorageGib
    """Persistent volume per node, GiB."""

    @model_validator(mode="after")
    def _replicas_fit(self) -> QdrantSettings:
        """replicationFactor <= nodesPerCluster."""
        if self.replication_factor > self.nodes_per_cluster:
            raise RuleError(
                [
                    (
                        "replicationFactor",
                        f"must be <= nodesPerCluster ({self.nodes_per_cluster}); got {self.replication_factor}",
                    )
                ]
            )
        return self


class DataLayerSettings(SettingsModel):
    """Sizes of the stateful services."""

    redis: RedisSettings
    """The Redis Cluster."""
    postgres: PostgresSettings
    """The PostgreSQL cluster (CloudNativePG)."""
    qdrant: QdrantSettings
    """The Qdrant clusters."""
