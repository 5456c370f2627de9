"""The disaster-recovery region on AWS and its RTO/RPO targets (`sophia:dr`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import Field, Strict, field_validator, model_validator

from failover.promoter import LEASE_SECONDS, MARGIN_SECONDS, worst_case_promotion_seconds
from settings.base import (
    AWS_REGIONS,
    NON_PUBLIC_NETWORKS,
    PositiveSeconds,
    Ratio,
    SettingsModel,
    check_bucket,
    check_cron,
    check_dns_name,
    check_dynamodb_table,
    check_hosted_zone,
    ipv4_network,
)
from settings.errors import RuleError


class FailoverSettings(SettingsModel):
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
    """Path the Route 53 health check requests over HTTPS on the primary endpoint."""
    health_check_interval_seconds: Annotated[int, Strict(), Field(ge=10, le=30)] = 10
    """Route 53 checks every 10 or 30 seconds."""
    failure_threshold: Annotated[int, Strict(), Field(ge=1, le=10)] = 3
    """Consecutive failed checks before the primary counts as down."""
    ttl_seconds: Annotated[int, Strict(), Field(ge=1, le=300)] = 20
    """TTL of the failover records: how long a client may keep the old answer."""
    lease_table: str = "sophia-postgres-lease"
    """DynamoDB table (in `awsRegion`) holding the lease on the PostgreSQL primary role; prod's
    `dataLayer.postgres.drReplication.failoverLeaseTable` names the same table."""

    @field_validator("health_check_interval_seconds")
    @classmethod
    def _interval(cls, value: int) -> int:
        """10 or 30 (what Route 53 offers)."""
        if value not in (10, 30):
            raise ValueError(f"Route 53 health checks run every 10 or 30 seconds, got {value}")
        return value

    @field_validator("record_name", "primary_endpoint", "secondary_endpoint")
    @classmethod
    def _host(cls, value: str) -> str:
        """A lowercase DNS name."""
        return check_dns_name(value)

    @field_validator("lease_table")
    @classmethod
    def _table(cls, value: str) -> str:
        """A DynamoDB table name."""
        return check_dynamodb_table(value)

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        """A Route 53 hosted zone id (Z...)."""
        return check_hosted_zone(value)

    @property
    def worst_case_failover_seconds(self) -> int:
        """Detection (interval x threshold) plus the TTL clients may still cache the old answer."""
        return self.health_check_interval_seconds * self.failure_threshold + self.ttl_seconds


# An IAM role or user; service-linked roles cannot have access entries (EKS User Guide, "Grant IAM
# users and roles access to Kubernetes APIs").
_IAM_PRINCIPAL = re.compile(r"arn:aws:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}")


def check_principal(value: str) -> str:
    """An IAM role or user ARN, not a service-linked role."""
    if not _IAM_PRINCIPAL.fullmatch(value):
        raise ValueError(f"must be an IAM role or user ARN (arn:aws:iam::<account>:role/<name>), got {value!r}")
    if ":role/aws-service-role/" in value:
        raise ValueError(f"{value} is a service-linked role, which EKS access entries do not accept")
    return value


class EksSettings(SettingsModel):
    """The DR region's EKS cluster (the Postgres replica cluster and Qdrant run on it)."""

    version: str = "1.31"
    """EKS Kubernetes version (major.minor)."""
    node_instance_type: str = "r6i.xlarge"
    """EC2 instance type of the managed node group."""
    nodes: Annotated[int, Strict(), Field(ge=3, le=100)] = 3
    """One node per availability zone at least."""
    public_access_cidrs: Annotated[tuple[str, ...], Field(max_length=40)]
    """Public networks allowed to reach the API endpoint: the operators' and the deploy runners'
    egress; never 0.0.0.0/0. No default: only the organization knows them."""
    deploy_role_arn: str
    """The IAM role CI's `pulumi up -s dr` runs as (the `dr` environment's `AWS_ROLE_ARN`); it
    deploys the cluster's Kubernetes objects, so it is a cluster administrator."""
    operator_arns: Annotated[tuple[str, ...], Field(max_length=20)]
    """IAM roles or users of the operators who run the DR runbook; cluster administrators."""

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """At least one public IPv4 CIDR; never 0.0.0.0/0."""
        if not value:
            raise ValueError("must list at least one network (the API endpoint is closed otherwise)")
        for cidr in value:
            network = ipv4_network(cidr)
            if network.prefixlen == 0:
                raise ValueError("must not open the cluster API to the whole internet (0.0.0.0/0)")
            if any(network.overlaps(block) for block in NON_PUBLIC_NETWORKS):
                raise ValueError(f"{cidr} is not a public network (the public endpoint sees public addresses)")
        return value

    @field_validator("deploy_role_arn")
    @classmethod
    def _deploy_role(cls, value: str) -> str:
        """An IAM role or user ARN, not a service-linked role."""
        return check_principal(value)

    @field_validator("operator_arns")
    @classmethod
    def _operators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """At least one; IAM role or user ARNs, each once."""
        if not value:
            raise ValueError("must list at least one operator (nobody could run the DR runbook otherwise)")
        for arn in value:
            check_principal(arn)
        if len(set(value)) != len(value):
            raise ValueError("must not list a principal twice")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> EksSettings:
        """deployRoleArn is not also an operator (one access entry per principal)."""
        if self.deploy_role_arn in self.operator_arns:
            raise RuleError([("operatorArns", f"must not repeat deployRoleArn ({self.deploy_role_arn})")])
        return self


# ElastiCache for Redis (cluster mode): at most 500 nodes in one replication group.
MAX_CACHE_NODES = 500


class ElastiCacheSettings(SettingsModel):
    """The DR cache: ElastiCache for Redis in cluster mode."""

    node_type: str = "cache.r6g.large"
    """ElastiCache node type."""
    shards: Annotated[int, Strict(), Field(ge=1, le=500)] = 3
    """Node groups (hash-slot shards) of the cluster-mode replication group."""
    replicas_per_shard: Annotated[int, Strict(), Field(ge=1, le=5)] = 1
    """At least one, for automatic failover and multi-AZ."""
    snapshot_retention_days: Annotated[int, Strict(), Field(ge=1, le=35)] = 7
    """Daily automatic snapshots kept (ElastiCache allows up to 35)."""

    @model_validator(mode="before")
    @classmethod
    def _no_seed(cls, data: Any) -> Any:
        """seedRdbArns is gone: the DR cache starts empty and warms from traffic (docs/dr.md)."""
        if isinstance(data, dict) and "seedRdbArns" in data:
            raise RuleError(
                [
                    (
                        "seedRdbArns",
                        "is no longer supported: ElastiCache reads seed RDBs only when a cache is created (and the "
                        "DR cache is protected), only from SSE-S3 objects (the replica bucket is SSE-KMS), one set "
                        "per shard of a matching layout; the DR cache starts empty and warms from traffic "
                        "(docs/dr.md, Redis)",
                    )
                ]
            )
        return data

    @model_validator(mode="after")
    def _fits_one_group(self) -> ElastiCacheSettings:
        """shards x (1 + replicasPerShard) <= 500, the nodes one cluster-mode replication group may have."""
        nodes = self.shards * (1 + self.replicas_per_shard)
        if nodes > MAX_CACHE_NODES:
            raise RuleError(
                [
                    (
                        "shards",
                        f"{self.shards} shards x (1 + {self.replicas_per_shard} replicas) = {nodes} nodes; "
                        f"a cluster-mode replication group has at most {MAX_CACHE_NODES}",
                    )
                ]
            )
        return self


class DrRestoreCheckSettings(SettingsModel):
    """The DR region's restore checks of the replicated backups (cross-region verification)."""

    schedule: str = "30 7 * * *"
    """Cron schedule (UTC); after the primary's own checks (04:30) and their figures have replicated."""
    stale_after_hours: Annotated[int, Strict(), Field(ge=2, le=168)] = 30
    """An alarm fires when no check of a store has succeeded for this long (CloudWatch evaluates
    at most 7 days of hourly periods)."""
    count_tolerance: Ratio = 0.05
    """Restored rows/points/keys may differ from the primary's figures by this share."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        """Five-field cron (UTC)."""
        return check_cron(value)


class DrSettings(SettingsModel):
    """The disaster-recovery region on AWS and the targets it must meet."""

    aws_region: str
    """AWS region of the DR site, e.g. `us-east-1`."""
    vpc_cidr: str
    """Private IPv4 range of the DR VPC, /16 to /24 (RFC 1918)."""
    rto_seconds: Annotated[int, Strict(), Field(ge=1, le=86400)]
    """Recovery time objective: longest tolerable outage, seconds."""
    rpo_seconds: Annotated[int, Strict(), Field(ge=1, le=86400)]
    """Recovery point objective: most data loss tolerated, seconds of writes."""
    primary_stack: str
    """The prod stack this region protects, as `organization/project/stack` (a StackReference)."""
    audit_bucket: str
    """S3 bucket for CloudTrail and VPC flow logs (kept `auditRetentionDays`)."""
    backup_replica_bucket: str
    """The prod stack's `backups.replicaBucket`, in this region; checked against prod's output at deploy."""
    audit_retention_days: Annotated[int, Strict(), Field(ge=90, le=3650)] = 400
    """Audit records are kept at least 90 days; 400 covers a yearly review."""
    availability_zones: Annotated[tuple[str, ...], Field(max_length=3)]
    """Exactly three zones of `awsRegion`."""
    eks: EksSettings
    """The DR Kubernetes cluster."""
    elasticache: ElastiCacheSettings = ElastiCacheSettings()
    """The DR cache."""
    failover: FailoverSettings
    """Route 53 failover between the regions."""
    replication_lag_alert_seconds: PositiveSeconds = 5.0
    """The Postgres replica's lag alert; it bounds the RPO, so it must be <= rpoSeconds."""
    qdrant_restore_schedule: str = "0 3 * * *"
    """Cron schedule (UTC) of restoring the primary's Qdrant snapshots into DR."""
    restore_checks: DrRestoreCheckSettings = DrRestoreCheckSettings()
    """Restore tests of the primary's backups as replicated into this region."""

    @field_validator("aws_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        """A known AWS region."""
        if value not in AWS_REGIONS:
            raise ValueError(f"unknown AWS region {value!r} (e.g. 'us-east-1')")
        return value

    @field_validator("primary_stack")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        """organization/project/stack."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError(f"must be organization/project/stack, e.g. sophia-ai/sophia/prod; got {value!r}")
        return value

    @field_validator("qdrant_restore_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        """Five-field cron (UTC)."""
        return check_cron(value)

    @field_validator("audit_bucket", "backup_replica_bucket")
    @classmethod
    def _audit_bucket(cls, value: str) -> str:
        """A valid S3 bucket name."""
        return check_bucket(value)

    @field_validator("vpc_cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        """An RFC 1918 IPv4 network, /16 to /24, no host bits."""
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
        """Three distinct zones of awsRegion; worst-case failover (interval x threshold + TTL) and
        worst-case promotion (lease, margin, polling, promotion) under rtoSeconds;
        replicationLagAlertSeconds <= rpoSeconds."""
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
        promotion = worst_case_promotion_seconds()
        if promotion >= self.rto_seconds:
            problems.append(
                (
                    "rtoSeconds",
                    f"the DR database is writable at worst {promotion:g} s after the primary dies (lease "
                    f"{LEASE_SECONDS:g} s + margin {MARGIN_SECONDS:g} s, polling, promotion); rtoSeconds "
                    f"({self.rto_seconds}) must be above that",
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
