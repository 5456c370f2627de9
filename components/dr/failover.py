"""`DrFailover`: Route 53 failover between the primary region and DR. The PRIMARY record answers
while its health check passes; after `failureThreshold` failed checks, every `interval` seconds,
Route 53 answers with the SECONDARY. Clients that cached the old answer keep it at most the TTL,
so the worst case is interval x threshold + TTL, which settings keep under the RTO."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings.dr import FailoverSettings


@dataclass(frozen=True)
class DrFailoverArgs:
    """Inputs of `DrFailover`."""

    failover: FailoverSettings
    """`sophia:dr.failover`."""
    tags: Mapping[str, str]
    provider: aws.Provider
    secondary_target: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None
    """(DNS name, hosted zone id) of the DR gateway's load balancer: `secondaryEndpoint` aliases it."""


class DrFailover(pulumi.ComponentResource):
    """Two CNAME records for `recordName`, health-checked on both sides."""

    def __init__(self, name: str, args: DrFailoverArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Failover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        settings = args.failover
        # The promoter pins the primary's check to unhealthy (disabled and inverted) after a
        # promotion, and failback releases it: those two fields are theirs, not the program's.
        pinned_by_promoter = pulumi.ResourceOptions(ignore_changes=["disabled", "invertHealthcheck"])
        checks = {
            role: aws.route53.HealthCheck(
                f"{name}-{role}-check",
                type="HTTPS",
                fqdn=endpoint,
                port=443,
                resource_path=settings.health_check_path,
                request_interval=settings.health_check_interval_seconds,
                failure_threshold=settings.failure_threshold,
                enable_sni=True,
                measure_latency=True,
                tags={**args.tags, "Name": f"{name}-{role}"},
                opts=pulumi.ResourceOptions.merge(child, pinned_by_promoter) if role == "primary" else child,
            )
            for role, endpoint in (("primary", settings.primary_endpoint), ("secondary", settings.secondary_endpoint))
        }
        for role, endpoint in (("primary", settings.primary_endpoint), ("secondary", settings.secondary_endpoint)):
            aws.route53.Record(
                f"{name}-{role}",
                zone_id=settings.hosted_zone_id,
                name=settings.record_name,
                type="CNAME",
                ttl=settings.ttl_seconds,
                records=[endpoint],
                set_identifier=f"{name}-{role}",
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role.upper())],
                health_check_id=checks[role].id,
                opts=child,
            )
        if args.secondary_target is not None:
            # The SECONDARY record names secondaryEndpoint; that name is an alias of the DR gateway's
            # load balancer (its addresses follow the NLB's), checked by the secondary health check.
            target, zone = args.secondary_target
            aws.route53.Record(
                f"{name}-secondary-gateway",
                zone_id=settings.hosted_zone_id,
                name=settings.secondary_endpoint,
                type="A",
                aliases=[aws.route53.RecordAliasArgs(name=target, zone_id=zone, evaluate_target_health=True)],
                opts=child,
            )
        self.primary_health_check_id = checks["primary"].id
        self.worst_case_failover_seconds = settings.worst_case_failover_seconds
        self.register_outputs({"worstCaseFailoverSeconds": self.worst_case_failover_seconds})
