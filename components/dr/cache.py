"""`DrCache`: the DR region's Redis, ElastiCache in cluster mode. Encrypted at rest (the region's
KMS key) and in transit, an auth token from `pulumi-random`, automatic failover across zones,
daily snapshots and a final snapshot on deletion.

It is a cache that starts empty and warms from traffic, and claims to be nothing more. Nothing
replicates into it: Global Datastore joins ElastiCache clusters only, and the primary's Redis is
self-managed; seeding from the primary's RDB files works only when a cache is created (this one
is protected), only from SSE-S3 objects (the replica bucket is SSE-KMS) and shard by shard of a
matching layout (ElastiCache User Guide, "Seeding a new cluster with an externally created backup")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from settings.dr import ElastiCacheSettings

REDIS_PORT = 6379


@dataclass(frozen=True)
class DrCacheArgs:
    """Inputs of `DrCache`."""

    cache: ElastiCacheSettings
    """`sophia:dr.elasticache`."""
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    provider: aws.Provider


class DrCache(pulumi.ComponentResource):
    """`endpoint` (configuration endpoint, TLS) and `auth_token` (a Pulumi secret)."""

    endpoint: pulumi.Output[str]
    auth_token: pulumi.Output[str]

    def __init__(self, name: str, args: DrCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        cache = args.cache
        # ElastiCache auth tokens: 16-128 printable characters, none of @ " / or space.
        token = random.RandomPassword(
            f"{name}-auth-token",
            length=48,
            special=True,
            override_special="!&#$^<>-",
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description="DR cache: private subnets in three zones",
            tags=dict(args.tags),
            opts=child,
        )
        self.group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=f"{name}-redis",
            description="Sophia DR cache (cluster mode)",
            engine="redis",
            engine_version="7.1",
            parameter_group_name="default.redis7.cluster.on",
            node_type=cache.node_type,
            num_node_groups=cache.shards,
            replicas_per_node_group=cache.replicas_per_shard,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            auth_token=token.result,
            port=REDIS_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[args.security_group_id],
            snapshot_retention_limit=cache.snapshot_retention_days,
            snapshot_window="05:00-06:00",
            maintenance_window="sun:06:30-sun:07:30",
            final_snapshot_identifier=f"{name}-redis-final",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True),
        )
        self.endpoint = self.group.configuration_endpoint_address
        self.auth_token = pulumi.Output.secret(token.result)
        self.register_outputs({"endpoint": self.endpoint})
