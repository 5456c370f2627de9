"""`GpuPool`: `desired` Lambda instances of one type, with their SSH key and firewall rulesets.

The pool records its instances; `GpuFleet` launches them and waits for their boots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from policies.catalog import load_lambda_catalog
from providers.lambda_cloud.resources import (
    FirewallRule,
    LambdaFirewallRuleset,
    LambdaFirewallRulesetArgs,
    LambdaInstance,
    LambdaInstanceArgs,
    LambdaSshKey,
    LambdaSshKeyArgs,
)
from settings.compute import GpuPoolSettings, IngressRule


@dataclass(frozen=True)
class GpuPoolArgs:
    """Inputs of `GpuPool`."""

    pool: GpuPoolSettings
    """Size, type and schedule of the pool (from `sophia:gpuPools`)."""
    account_prefix: str
    """Prefix of names in the Lambda account, e.g. `sophia-prod`; account names must be unique."""
    region: str
    """Region to launch in first."""
    fallback_regions: Sequence[str]
    """Regions tried in order when `region` has no capacity."""
    ssh_public_key: str
    """Public key installed on every instance."""
    ssh_allowed_cidrs: Sequence[str]
    """Networks allowed to reach port 22."""
    tags: Mapping[str, str]
    """Cost tags (owner, cost-centre, environment) every instance carries."""
    ingress: Sequence[IngressRule] = ()
    """Further inbound rules beyond SSH."""
    user_data: pulumi.Input[str] | None = None
    """Optional cloud-init, e.g. `components.compute.cloud_init.node_join_user_data`."""
    autoscaled: bool = False
    """With `sophia:autoscaler`: Pulumi runs only the floor (`min`, 0 with `offHours`); the rest is burst."""
    protect: bool = False
    """Protect the instance records (prod): a floor instance is removed only on purpose."""


class GpuPool(pulumi.ComponentResource):
    """Instances `<pool>-0 .. <pool>-(count-1)`, count `desired`, or the floor when autoscaled: scaling
    down removes the highest indexes."""

    members: list[dict[str, Any]]
    """The instances as the fleet launches them (`LambdaInstance.fleet_member`)."""
    hourly_cost_usd: float
    """Catalog price times the instances Pulumi runs, known at plan time."""

    def __init__(self, name: str, args: GpuPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:compute:GpuPool", name, None, opts)
        pool = args.pool
        self.pool_name = pool.name
        account_name = self.account_name = f"{args.account_prefix}-{pool.name}"
        child = pulumi.ResourceOptions(parent=self)

        self.ssh_key = LambdaSshKey(
            f"{name}-ssh-key", LambdaSshKeyArgs(name=account_name, public_key=args.ssh_public_key), child
        )
        rules = [
            FirewallRule(protocol="tcp", port_range=(22, 22), source_network=cidr, description=f"SSH from {cidr}")
            for cidr in args.ssh_allowed_cidrs
        ] + [
            FirewallRule(
                protocol=rule.protocol,
                port_range=(rule.from_port, rule.to_port),
                source_network=cidr,
                description=rule.description or f"{rule.protocol} {rule.from_port}-{rule.to_port} from {cidr}",
            )
            for rule in args.ingress
            for cidr in rule.cidrs
        ]
        # Rulesets are regional and an instance may land in any candidate region.
        self.ruleset_names = {region: f"{account_name}-{region}" for region in (args.region, *args.fallback_regions)}
        self.firewalls = {
            region: LambdaFirewallRuleset(
                f"{name}-firewall-{region}",
                LambdaFirewallRulesetArgs(name=self.ruleset_names[region], region=region, rules=rules),
                child,
            )
            for region in (args.region, *args.fallback_regions)
        }
        tags = {**args.tags, "pool": pool.name}
        if pool.off_hours is not None:
            schedule = pool.off_hours
            tags["off-hours"] = f"stop {schedule.stop_at} start {schedule.start_at} {schedule.timezone}" + (
                " weekends-off" if schedule.weekends_off else ""
            )
        self.instances = [
            LambdaInstance(
                f"{name}-{index}",
                LambdaInstanceArgs(
                    name=f"{account_name}-{index}",
                    instance_type=pool.instance_type,
                    region=args.region,
                    fallback_regions=list(args.fallback_regions),
                    ssh_key_names=[self.ssh_key.name],
                    firewall_ruleset_ids=[f.ruleset_id for f in self.firewalls.values()],
                    user_data=args.user_data,
                    tags=tags,
                ),
                pulumi.ResourceOptions(
                    parent=self, depends_on=[self.ssh_key, *self.firewalls.values()], protect=args.protect
                ),
            )
            for index in range(pool.floor(args.autoscaled))
        ]
        by_region = {region: [ruleset.ruleset_id] for region, ruleset in self.firewalls.items()}
        self.members = [instance.fleet_member(by_region, pool.name) for instance in self.instances]
        price = load_lambda_catalog().instance_type(pool.instance_type).price_usd_per_hour
        self.hourly_cost_usd = float(price * len(self.instances))
        self.register_outputs({"hourlyCostUsd": self.hourly_cost_usd})
