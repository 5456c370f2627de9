"""Typed, frozen stack settings. Every rule lives here, so it holds before any resource exists.

Field names are snake_case in Python and camelCase in `Pulumi.<stack>.yaml` (`sophia:<key>`).
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pulumi_aws
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from catalog import load_lambda_catalog
from settings.errors import RuleError

# JSON gives ints as ints: strict mode refuses 2.5, "2" and true where a count belongs.
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveCount = Annotated[int, Strict(), Field(ge=1)]
# A fraction strictly between 0 and 1 (0.9 = 90 %); strict refuses "0.9" and true.
Ratio = Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# Characters AWS accepts in tag values, which are the strictest of our targets.
_TAG_VALUE = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]{1,128}$")
AWS_REGIONS = frozenset(str(r.value) for r in pulumi_aws.Region)
# Private, shared, loopback, link-local, multicast and reserved space: never a firewall source.
_NON_PUBLIC = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
    )
)
_SSH_KEY_TYPES = frozenset(
    {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)


class Environment(StrEnum):
    PROD = "prod"
    DR = "dr"
    DEV = "dev"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class OffHoursSchedule(_Model):
    """When a pool is scaled to zero (the plan's 'automated hibernation for development instances')."""

    timezone: str
    """IANA time zone the clock times are in, e.g. `America/Los_Angeles`."""
    stop_at: str
    """Local time (HH:MM) the pool stops each working day."""
    start_at: str
    """Local time (HH:MM) the pool starts each working day."""
    weekends_off: bool = True
    """Whether the pool also stays off all Saturday and Sunday."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfo's failures for bad or odd names
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'America/Los_Angeles')") from None
        return value

    @field_validator("stop_at", "start_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"must be a 24-hour time HH:MM, got {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct_times(self) -> OffHoursSchedule:
        if self.stop_at == self.start_at:
            raise RuleError([("startAt", f"must differ from stopAt ({self.stop_at})")])
        return self


class GpuPoolSettings(_Model):
    """One pool of identical Lambda GPU instances."""

    name: str
    """Pool name, lowercase letters, digits and dashes (used in instance names and tags)."""
    instance_type: str
    """Lambda instance type; must be in the price catalog (`catalog/lambda_catalog.json`)."""
    min: Count
    """Fewest instances the pool may run."""
    desired: Count
    """Instances the stack runs now."""
    max: PositiveCount
    """Most instances the pool may run."""
    off_hours: OffHoursSchedule | None = None
    """Optional schedule that scales the pool to zero outside working hours."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must be 2-32 lowercase letters, digits or dashes, starting with a letter; got {value!r}")
        return value

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = load_lambda_catalog().instance_types
        if value not in known:
            raise ValueError(f"unknown instance type {value!r}; allowed: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> GpuPoolSettings:
        sizes = f"min={self.min}, desired={self.desired}, max={self.max}"
        if self.min > self.desired:
            raise RuleError([("min", f"must be <= desired (min <= desired <= max); got {sizes}")])
        if self.desired > self.max:
            raise RuleError([("desired", f"must be <= max (min <= desired <= max); got {sizes}")])
        return self


class IngressRule(_Model):
    """Extra inbound access to the GPU instances, e.g. 443 for inference endpoints."""

    protocol: str
    """tcp or udp."""
    from_port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    to_port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    cidrs: tuple[str, ...]
    """IPv4 sources; the policy pack decides which ports may face 0.0.0.0/0."""
    description: Annotated[str, Field(max_length=128)] = ""

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value not in ("tcp", "udp"):
            raise ValueError(f"must be tcp or udp, got {value!r}")
        return value

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one source network")
        for cidr in value:
            _network(cidr)
        return value

    @model_validator(mode="after")
    def _range(self) -> IngressRule:
        if self.from_port > self.to_port:
            raise RuleError([("toPort", f"must be >= fromPort ({self.from_port}); got {self.to_port}")])
        return self


class LambdaAccessSettings(_Model):
    """How operators reach the GPU instances: one SSH key, SSH open only to these networks."""

    ssh_public_key: str
    """OpenSSH public key installed on every instance (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)."""
    ssh_allowed_cidrs: tuple[str, ...]
    """Public IPv4 networks allowed to reach port 22; never 0.0.0.0/0."""
    ingress: tuple[IngressRule, ...] = ()
    """Further inbound rules for the pools' firewall rulesets."""

    @field_validator("ssh_public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        parts = value.split()
        if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES or len(value) > 4096:
            raise ValueError(
                "must be one OpenSSH public key line (ssh-ed25519 AAAA... comment), at most 4096 characters"
            )
        return value

    @field_validator("ssh_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one network (SSH is closed otherwise)")
        for cidr in value:
            network = _network(cidr)
            if network.prefixlen == 0:
                raise ValueError("must not open SSH to the whole internet (0.0.0.0/0)")
            if any(network.overlaps(block) for block in _NON_PUBLIC):
                raise ValueError(f"{cidr} is not a public network (Lambda firewall rules take public sources)")
        return value


class ClusterJoinSettings(_Model):
    """Optional: instances join the platform's Kubernetes cluster as agents at boot."""

    server_url: str
    """The cluster's agent join URL, https://host:6443."""
    k3s_version: str = "v1.31.4+k3s1"
    """Pinned k3s agent version installed by cloud-init."""

    @field_validator("server_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?$", value):
            raise ValueError(f"must be https://host[:port], got {value!r}")
        return value

    @field_validator("k3s_version")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not re.match(r"^v\d+\.\d+\.\d+\+k3s\d+$", value):
            raise ValueError(f"must be a pinned k3s release such as v1.31.4+k3s1, got {value!r}")
        return value


class KubernetesSettings(_Model):
    """The primary region's Kubernetes cluster, reached with the secret `sophia:kubeconfig`."""

    version: str
    """Cluster version (major.minor); objects are validated against its schemas."""
    storage_class: str
    """StorageClass for the data stores' volumes (its reclaim policy should be Retain)."""
    data_namespace: str = "sophia-data"
    """Namespace of the data stores; default-deny NetworkPolicy."""
    client_namespaces: tuple[str, ...] = ("sophia-apps",)
    """Namespaces whose pods may reach the stores' client ports."""
    monitoring_namespace: str = "monitoring"
    """Namespace whose Prometheus may scrape the exporters."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        match = re.fullmatch(r"1\.(\d+)", value)
        if match is None or not 28 <= int(match.group(1)) <= 37:
            raise ValueError(f"must be a supported Kubernetes minor version 1.28 to 1.37, got {value!r}")
        return value

    @field_validator("storage_class", "data_namespace", "monitoring_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(f"must be a DNS label (lowercase letters, digits, dashes; at most 63), got {value!r}")
        return value

    @field_validator("client_namespaces")
    @classmethod
    def _dns_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            cls._dns_label(name)
        return value


class BackupSettings(_Model):
    """Where the primary region's stores send backups (WAL, base backups, snapshots)."""

    s3_bucket: str
    """S3 bucket (replicated to the DR region by the dr stack)."""
    s3_region: str
    """AWS region of the bucket."""
    retention_days: PositiveCount = 30
    """How long backups are kept."""
    replica_bucket: str | None = None
    """Bucket in `replicaRegion` that S3 replication copies every backup to (required in prod)."""
    replica_region: str | None = None
    """AWS region of the replica bucket: the DR region, never the same as `s3Region`."""
    snapshot_schedule: str = "0 2 * * *"
    """Cron schedule (UTC) of the nightly Redis and Qdrant snapshots (Postgres archives continuously)."""

    @field_validator("snapshot_schedule")
    @classmethod
    def _snapshot_cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("s3_bucket", "replica_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        return None if value is None else _check_bucket(value)

    @field_validator("s3_region", "replica_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in AWS_REGIONS:
            raise ValueError(f"unknown AWS region {value!r} (e.g. 'us-east-1')")
        return value

    @model_validator(mode="after")
    def _replica(self) -> BackupSettings:
        if (self.replica_bucket is None) != (self.replica_region is None):
            missing = "replicaRegion" if self.replica_region is None else "replicaBucket"
            raise RuleError([(missing, "is required when the other replica setting is set")])
        if self.replica_region is not None and self.replica_region == self.s3_region:
            raise RuleError([("replicaRegion", f"must differ from s3Region ({self.s3_region}): cross-region copy")])
        if self.replica_bucket is not None and self.replica_bucket == self.s3_bucket:
            raise RuleError([("replicaBucket", "must differ from s3Bucket (bucket names are global)")])
        return self


class RedisSettings(_Model):
    """Redis Cluster: shards (masters) and their replicas."""

    masters: Annotated[int, Strict(), Field(ge=3)]
    """Masters (hash-slot shards); Redis Cluster needs at least 3."""
    replicas_per_master: Count
    """Replicas behind each master (0 only for throwaway environments)."""
    storage_gib: PositiveCount
    """Persistent volume per node, GiB (AOF and RDB)."""


class DrReplicationSettings(_Model):
    """The endpoint the DR region's replica streams from (TLS, certificate authentication)."""

    hostname: str
    """DNS name of the replication load balancer; in the server certificate."""
    allowed_cidrs: tuple[str, ...]
    """The DR region's egress addresses (its NAT gateways: the dr stack's `drNatPublicIps`)."""
    lag_alert_seconds: PositiveSeconds = 5.0
    """Alert when the DR replica replays more than this far behind (the dr stack's RPO bound)."""

    @field_validator("hostname")
    @classmethod
    def _host(cls, value: str) -> str:
        return _check_dns_name(value)

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list the DR region's egress networks")
        for cidr in value:
            network = _network(cidr)
            if network.prefixlen < 24:
                raise ValueError(f"{cidr} is wider than /24: list the DR NAT addresses, not a whole range")
        return value


class PostgresSettings(_Model):
    """PostgreSQL: one primary plus streaming read replicas."""

    read_replicas: Count
    """Streaming replicas serving the read-only endpoint."""
    storage_gib: PositiveCount
    """Persistent volume per instance, GiB."""
    dr_replication: DrReplicationSettings | None = None
    """Lets the DR region stream from this cluster (prod)."""


class QdrantSettings(_Model):
    """Qdrant: independent clusters, each of several nodes."""

    clusters: PositiveCount
    """Number of independent Qdrant clusters."""
    nodes_per_cluster: PositiveCount
    """Nodes in each cluster."""
    replication_factor: PositiveCount
    """Copies of each shard; at most the number of nodes."""
    storage_gib: PositiveCount
    """Persistent volume per node, GiB."""

    @model_validator(mode="after")
    def _replicas_fit(self) -> QdrantSettings:
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


class AlertThresholds(_Model):
    """The plan's alert table ("Monitoring and Alerts"); every number the rules use lives here."""

    service_down_minutes: PositiveCount = 2
    """Critical: a scrape target down this long."""
    latency_p95_seconds: PositiveSeconds = 1.0
    """Critical: p95 HTTP response time above this ..."""
    latency_minutes: PositiveCount = 5
    """... for this long."""
    error_rate: Ratio = 0.05
    """Critical: share of HTTP responses that are 5xx above this ..."""
    error_rate_minutes: PositiveCount = 2
    """... for this long."""
    memory_usage: Ratio = 0.90
    """Critical: node memory in use above this share ..."""
    memory_minutes: PositiveCount = 3
    """... for this long."""
    cpu_usage: Ratio = 0.80
    """Warning: node CPU busy above this share ..."""
    cpu_minutes: PositiveCount = 10
    """... for this long."""
    disk_usage: Ratio = 0.85
    """Warning: a node filesystem or data volume fuller than this ..."""
    disk_minutes: PositiveCount = 15
    """... for this long."""
    cache_hit_ratio: Ratio = 0.70
    """Warning: Redis keyspace hit ratio below this ..."""
    cache_hit_minutes: PositiveCount = 10
    """... for this long."""
    inter_service_success: Ratio = 0.90
    """Warning: share of successful service-to-service calls below this ..."""
    inter_service_minutes: PositiveCount = 5
    """... for this long (the plan gives no duration; 5 minutes filters single bad scrapes)."""
    cost_variance: Ratio = 0.10
    """Info: a day's GPU spend differs from the planned day by more than this share of the daily budget."""
    capacity_horizon_days: PositiveCount = 7
    """Info: a volume or filesystem is predicted to fill within this many days."""


class AlertRoutingSettings(_Model):
    """How Alertmanager delivers each severity (receivers' secrets are Pulumi secrets)."""

    warning_within_minutes: PositiveCount = 30
    """Warnings reach the team channel within this long (group interval)."""
    digest_hours: PositiveCount = 24
    """Info alerts are batched into one digest this often."""


class RestoreVerificationSettings(_Model):
    """The scheduled restore test each store gets."""

    schedule: str = "30 4 * * *"
    """Cron schedule (UTC) of the restore jobs; after the nightly backups."""
    stale_after_hours: PositiveCount = 30
    """An alert fires when no restore has succeeded for this long."""
    count_tolerance: Ratio = 0.05
    """Restored rows/points/keys may differ from the source's figures by this share (writes since the backup)."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class MonitoringSettings(_Model):
    """Prometheus, Alertmanager and Grafana on the primary cluster (`sophia:monitoring`)."""

    thresholds: AlertThresholds = AlertThresholds()
    """Alert thresholds; the defaults are the plan's table."""
    routing: AlertRoutingSettings = AlertRoutingSettings()
    restore_verification: RestoreVerificationSettings = RestoreVerificationSettings()
    retention_days: PositiveCount = 15
    """How long Prometheus keeps samples."""
    storage_gib: PositiveCount = 100
    """Prometheus volume, GiB."""


class DataLayerSettings(_Model):
    """Sizes of the stateful services."""

    redis: RedisSettings
    postgres: PostgresSettings
    qdrant: QdrantSettings


class FailoverSettings(_Model):
    """Route 53 failover between the primary (Lambda) region and DR."""

    hosted_zone_id: str
    """Route 53 hosted zone of `recordName`."""
    record_name: str
    """The name clients use, e.g. `api.sophia.ai`."""
    primary_endpoint: str
    """Host name serving the primary region (PRIMARY record, health-checked)."""
    secondary_endpoint: str
    """Host name serving the DR region (SECONDARY record)."""
    health_check_path: str = "/healthz"
    health_check_interval_seconds: Annotated[int, Strict(), Field(ge=10, le=30)] = 10
    """Route 53 checks every 10 or 30 seconds."""
    failure_threshold: Annotated[int, Strict(), Field(ge=1, le=10)] = 3
    """Consecutive failed checks before the primary counts as down."""
    ttl_seconds: Annotated[int, Strict(), Field(ge=1, le=300)] = 20
    """TTL of the failover records: how long a client may keep the old answer."""

    @field_validator("health_check_interval_seconds")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value not in (10, 30):
            raise ValueError(f"Route 53 health checks run every 10 or 30 seconds, got {value}")
        return value

    @field_validator("record_name", "primary_endpoint", "secondary_endpoint")
    @classmethod
    def _host(cls, value: str) -> str:
        return _check_dns_name(value)

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not re.fullmatch(r"Z[A-Z0-9]{1,31}", value):
            raise ValueError(f"must be a Route 53 hosted zone id (Z...), got {value!r}")
        return value

    @property
    def worst_case_failover_seconds(self) -> int:
        """Detection (interval x threshold) plus the TTL clients may still cache the old answer."""
        return self.health_check_interval_seconds * self.failure_threshold + self.ttl_seconds


class EksSettings(_Model):
    """The DR region's EKS cluster (the Postgres replica cluster and Qdrant run on it)."""

    version: str = "1.31"
    node_instance_type: str = "r6i.xlarge"
    nodes: Annotated[int, Strict(), Field(ge=3, le=100)] = 3
    """One node per availability zone at least."""
    public_access_cidrs: tuple[str, ...]
    """Networks allowed to reach the API endpoint (the deployers); never 0.0.0.0/0."""

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one network (the API endpoint is closed otherwise)")
        for cidr in value:
            network = _network(cidr)
            if network.prefixlen == 0:
                raise ValueError("must not open the cluster API to the whole internet (0.0.0.0/0)")
        return value


class ElastiCacheSettings(_Model):
    """The DR cache: ElastiCache for Redis in cluster mode."""

    node_type: str = "cache.r6g.large"
    shards: Annotated[int, Strict(), Field(ge=1, le=500)] = 3
    replicas_per_shard: Annotated[int, Strict(), Field(ge=1, le=5)] = 1
    """At least one, for automatic failover and multi-AZ."""
    snapshot_retention_days: Annotated[int, Strict(), Field(ge=1, le=35)] = 7
    seed_rdb_arns: tuple[str, ...] = ()
    """S3 ARNs of RDB files (the primary's Redis snapshots in the replica bucket) to warm a new cache from."""

    @field_validator("seed_rdb_arns")
    @classmethod
    def _arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not re.fullmatch(r"arn:aws:s3:::[a-z0-9.-]+/.+\.rdb", arn):
                raise ValueError(f"must be S3 object ARNs of .rdb files, got {arn!r}")
        return value


class DrSettings(_Model):
    """The disaster-recovery region on AWS and the targets it must meet."""

    aws_region: str
    """AWS region of the DR site, e.g. `us-east-1`."""
    vpc_cidr: str
    """Private IPv4 range of the DR VPC, /16 to /24 (RFC 1918)."""
    rto_seconds: PositiveCount
    """Recovery time objective: longest tolerable outage, seconds."""
    rpo_seconds: PositiveCount
    """Recovery point objective: most data loss tolerated, seconds of writes."""
    primary_stack: str
    """The prod stack this region protects, as `organization/project/stack` (a StackReference)."""
    audit_bucket: str
    """S3 bucket for CloudTrail and VPC flow logs (kept `auditRetentionDays`)."""
    backup_replica_bucket: str
    """The prod stack's `backups.replicaBucket`, in this region; checked against prod's output at deploy."""
    audit_retention_days: Annotated[int, Strict(), Field(ge=90)] = 400
    """Audit records are kept at least 90 days; 400 covers a yearly review."""
    availability_zones: tuple[str, ...]
    """Exactly three zones of `awsRegion`."""
    eks: EksSettings
    elasticache: ElastiCacheSettings = ElastiCacheSettings()
    failover: FailoverSettings
    replication_lag_alert_seconds: PositiveSeconds = 5.0
    """The Postgres replica's lag alert; it bounds the RPO, so it must be <= rpoSeconds."""
    qdrant_restore_schedule: str = "0 3 * * *"
    """Cron schedule (UTC) of restoring the primary's Qdrant snapshots into DR."""
    promote_postgres: bool = False
    """False: the DR Postgres follows the primary. True: promoted, read-write (failover runbook)."""

    @field_validator("aws_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in AWS_REGIONS:
            raise ValueError(f"unknown AWS region {value!r} (e.g. 'us-east-1')")
        return value

    @field_validator("primary_stack")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError(f"must be organization/project/stack, e.g. sophia-ai/sophia/prod; got {value!r}")
        return value

    @field_validator("qdrant_restore_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("audit_bucket", "backup_replica_bucket")
    @classmethod
    def _audit_bucket(cls, value: str) -> str:
        return _check_bucket(value)

    @field_validator("vpc_cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            raise ValueError(
                f"must be an IPv4 network in CIDR form with no host bits, e.g. 10.40.0.0/16; got {value!r}"
            ) from None
        if not network.is_private or not any(
            network.subnet_of(block)
            for block in (
                ipaddress.IPv4Network("10.0.0.0/8"),
                ipaddress.IPv4Network("172.16.0.0/12"),
                ipaddress.IPv4Network("192.168.0.0/16"),
            )
        ):
            raise ValueError(f"must be inside an RFC 1918 private range (10/8, 172.16/12, 192.168/16); got {value}")
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"prefix must be /16 to /24 (AWS VPC limits, room for 3 AZs); got /{network.prefixlen}")
        return value

    @model_validator(mode="after")
    def _targets(self) -> DrSettings:
        problems: list[tuple[str, str]] = []
        zones = self.availability_zones
        if len(zones) != 3 or len(set(zones)) != 3:
            problems.append(("availabilityZones", f"must list exactly three distinct zones; got {list(zones)}"))
        elif not all(re.fullmatch(re.escape(self.aws_region) + r"[a-z]", zone) for zone in zones):
            problems.append(("availabilityZones", f"must be zones of {self.aws_region} (e.g. {self.aws_region}a)"))
        worst = self.failover.worst_case_failover_seconds
        if worst >= self.rto_seconds:
            failover = self.failover
            problems.append(
                (
                    "failover",
                    f"worst-case failover {worst} s (checks every {failover.health_check_interval_seconds} s x "
                    f"{failover.failure_threshold} failures + TTL {failover.ttl_seconds} s) must be under "
                    f"rtoSeconds ({self.rto_seconds})",
                )
            )
        if self.replication_lag_alert_seconds > self.rpo_seconds:
            problems.append(
                (
                    "replicationLagAlertSeconds",
                    f"must be <= rpoSeconds ({self.rpo_seconds}): a lag above the RPO would go unnoticed",
                )
            )
        if problems:
            raise RuleError(problems)
        return self


class CostTags(_Model):
    """Tags every billable resource carries."""

    owner: str
    """Team that owns the stack."""
    cost_centre: str
    """Cost centre the spend is booked to."""

    @field_validator("owner", "cost_centre")
    @classmethod
    def _tag_value(cls, value: str) -> str:
        if not _TAG_VALUE.match(value):
            raise ValueError(f"must be 1-128 letters, digits, spaces or _.:/=+-@; got {value!r}")
        return value


class StackSettings(_Model):
    """Everything a stack is configured with, validated as a whole."""

    environment: Environment
    """Which environment this stack is: prod, dr or dev."""
    lambda_region: str | None = None
    """Lambda Cloud region the GPU pools launch in; required when there are pools."""
    lambda_fallback_regions: tuple[str, ...] = ()
    """Regions tried in order when the primary has no capacity."""
    gpu_pools: tuple[GpuPoolSettings, ...] = ()
    """The GPU instance pools."""
    lambda_access: LambdaAccessSettings | None = None
    """SSH key and allowed networks for the pools; required when there are pools."""
    cluster_join: ClusterJoinSettings | None = None
    """If set, instances join the cluster at boot (needs the secret sophia:clusterJoinToken)."""
    data_layer: DataLayerSettings
    """Sizes of Redis, PostgreSQL and Qdrant."""
    kubernetes: KubernetesSettings | None = None
    """The primary region's cluster; required in prod and dev (dr runs on AWS)."""
    backups: BackupSettings | None = None
    """Backup destination; required wherever `kubernetes` is set."""
    monitoring: MonitoringSettings | None = None
    """Monitoring and alerting; required wherever `kubernetes` is set."""
    dr: DrSettings | None = None
    """The DR region; required in the dr environment."""
    monthly_budget_usd: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    """Most the stack may cost per month, USD."""
    tags: CostTags
    """Owner and cost-centre tags."""

    @field_validator("lambda_region")
    @classmethod
    def _known_lambda_region(cls, value: str | None) -> str | None:
        if value is not None:
            _check_lambda_region(value)
        return value

    @field_validator("lambda_fallback_regions")
    @classmethod
    def _known_fallbacks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for region in value:
            _check_lambda_region(region)
        if len(set(value)) != len(value):
            raise ValueError("must not list a region twice")
        return value

    @field_validator("gpu_pools")
    @classmethod
    def _unique_pools(cls, value: tuple[GpuPoolSettings, ...]) -> tuple[GpuPoolSettings, ...]:
        names = [pool.name for pool in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> StackSettings:
        problems: list[tuple[str, str]] = []
        if self.gpu_pools and self.lambda_region is None:
            problems.append(("lambdaRegion", "is required when gpuPools is not empty"))
        if self.gpu_pools and self.lambda_access is None:
            problems.append(("lambdaAccess", "is required when gpuPools is not empty"))
        if self.lambda_region is not None and self.lambda_region in self.lambda_fallback_regions:
            problems.append(("lambdaFallbackRegions", f"must not repeat the primary region {self.lambda_region}"))
        if self.environment is Environment.DR and self.dr is None:
            problems.append(("dr", "is required when environment is dr"))
        if self.environment is not Environment.DR and self.kubernetes is None:
            problems.append(("kubernetes", f"is required when environment is {self.environment.value}"))
        if self.kubernetes is not None and self.backups is None:
            problems.append(("backups", "is required when kubernetes is set (the stores back up to S3)"))
        if self.kubernetes is not None and self.monitoring is None:
            problems.append(("monitoring", "is required when kubernetes is set (alerts and restore checks)"))
        if self.environment is Environment.PROD and self.backups is not None and self.backups.replica_bucket is None:
            problems.append(("backups.replicaBucket", "is required in prod (backups are copied to the DR region)"))
        if problems:
            raise RuleError(problems)
        return self

    @property
    def hourly_gpu_cost_usd(self) -> Decimal:
        """What the pools cost per hour at their desired size, from the price catalog."""
        catalog = load_lambda_catalog()
        return sum(
            (catalog.instance_type(p.instance_type).price_usd_per_hour * p.desired for p in self.gpu_pools),
            Decimal(0),
        )


def _network(cidr: str) -> ipaddress.IPv4Network:
    """An IPv4 network written with no host bits, or the one error message every CIDR setting gives."""
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        raise ValueError(f"{cidr!r} is not an IPv4 CIDR with no host bits") from None


def _check_dns_name(value: str) -> str:
    if not _DNS_NAME.fullmatch(value):
        raise ValueError(f"must be a lowercase DNS name such as api.sophia.ai, got {value!r}")
    return value


def _check_bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value):
        raise ValueError(
            f"must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, dashes), got {value!r}"
        )
    return value


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields):
        raise ValueError(f"must be a five-field cron schedule such as '30 4 * * *', got {value!r}")
    return value


def _check_lambda_region(value: Any) -> None:
    regions = load_lambda_catalog().regions
    if value not in regions:
        raise ValueError(f"unknown Lambda region {value!r}; allowed: {', '.join(sorted(regions))}")
