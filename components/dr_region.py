"""`DrRegion`: the disaster-recovery site on AWS. It reads what it protects from the prod stack
through a StackReference, and builds the audit trail, the network, the cache and the Route 53
failover in `sophia:dr.awsRegion`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.audit_trail import AuditTrail, AuditTrailArgs
from components.dr_cache import DrCache, DrCacheArgs
from components.dr_failover import DrFailover, DrFailoverArgs
from components.dr_network import DrNetwork, DrNetworkArgs
from settings.model import DrSettings


@dataclass(frozen=True)
class DrRegionArgs:
    """Inputs of `DrRegion`."""

    dr: DrSettings
    """`sophia:dr`."""
    tags: Mapping[str, str]
    provider: aws.Provider
    """The explicit provider for `dr.awsRegion`."""


class DrRegion(pulumi.ComponentResource):
    """`backup_replica_bucket` (from prod), `cache_endpoint`, `worst_case_failover_seconds`."""

    def __init__(self, name: str, args: DrRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Region", name, None, opts)
        dr, tags, provider = args.dr, dict(args.tags), args.provider
        primary = pulumi.StackReference(
            f"{name}-primary", stack_name=dr.primary_stack, opts=pulumi.ResourceOptions(parent=self)
        )
        self.backup_replica_bucket = primary.require_output("backupReplicaBucket")
        audit = AuditTrail(
            f"{name}-audit",
            AuditTrailArgs(dr.audit_bucket, tags, provider, dr.audit_retention_days),
            pulumi.ResourceOptions(parent=self),
        )
        # Encrypts the DR stores (ElastiCache at rest, EKS secrets and volumes).
        self.data_key = aws.kms.Key(
            f"{name}-data-key",
            description="Encrypts the DR region's data stores",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True),
        )
        self.network = DrNetwork(
            f"{name}-network",
            DrNetworkArgs(dr, tags, provider, audit.flow_log_destination),
            pulumi.ResourceOptions(parent=self),
        )
        self.cache = DrCache(
            f"{name}-cache",
            DrCacheArgs(
                dr.elasticache,
                self.network.private_subnet_ids,
                self.network.data_security_group.id,
                self.data_key.arn,
                tags,
                provider,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.failover = DrFailover(
            f"{name}-failover", DrFailoverArgs(dr.failover, tags, provider), pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs(
            {
                "cacheEndpoint": self.cache.endpoint,
                "worstCaseFailoverSeconds": self.failover.worst_case_failover_seconds,
            }
        )
