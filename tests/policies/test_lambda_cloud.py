"""Lambda Cloud rules, on the stack's own dynamic resources (records, the fleet, rulesets, keys): a
compliant baseline passes; each broken property fails, whether a record or a fleet member carries it."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from providers.lambda_cloud.resources import (
    FirewallRule,
    LambdaFirewallRuleset,
    LambdaFirewallRulesetArgs,
    LambdaFleet,
    LambdaFleetArgs,
    LambdaInstance,
    LambdaInstanceArgs,
    LambdaSshKey,
    LambdaSshKeyArgs,
)
from tests.policies.helpers import messages, program, skipped, with_

SSH = FirewallRule(protocol="tcp", port_range=(22, 22), source_network="203.0.113.0/24", description="ssh")
HTTPS = FirewallRule(protocol="tcp", port_range=(443, 443), source_network="0.0.0.0/0", description="https")
INSTANCE: dict[str, Any] = {
    "name": "sophia-prod-ai-core-0",
    "instance_type": "gpu_1x_gh200",
    "region": "us-west-1",
    "fallback_regions": ["us-west-2"],
    "ssh_key_names": ["sophia-prod-ai-core"],
    "tags": {"pool": "ai-core", "cost-centre": "sophia-ai-prod", "owner": "platform-infra"},
}


def ruleset(*rules: FirewallRule) -> Any:
    return program(
        lambda: LambdaFirewallRuleset("fw", LambdaFirewallRulesetArgs(name="fw", region="us-west-1", rules=rules))
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FirewallRule("tcp", "0.0.0.0/0", "x", (22, 22)), "rule 0 admits 0.0.0.0/0 (the whole internet) to port 22."),
        (FirewallRule("tcp", "0.0.0.0/0", "x", (1, 1024)), "rule 0 admits 0.0.0.0/0 (the whole internet) to port 22."),
        (FirewallRule("all", "0.0.0.0/0", "x"), "rule 0 admits 0.0.0.0/0 (the whole internet) to all ports."),
        (FirewallRule("tcp", "0.0.0.0/1", "x", (22, 22)), "rule 0 admits 0.0.0.0/1 ("),
    ],
    ids=["ssh", "range", "all", "half-internet"],
)
def test_no_public_ssh(rule: FirewallRule, expected: str) -> None:
    policy = "lambda-cloud-firewall-no-public-ssh"
    assert messages(policy, ruleset(SSH, HTTPS)) == []
    found = messages(policy, ruleset(rule))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_no_public_data_ports() -> None:
    policy = "lambda-cloud-firewall-no-public-data-ports"
    assert messages(policy, ruleset(SSH, HTTPS)) == []
    postgres = FirewallRule("tcp", "0.0.0.0/0", "pg", (5432, 5432))
    assert messages(policy, ruleset(SSH, postgres)) == ["rule 1 admits 0.0.0.0/0 (the whole internet) to port 5432."]
    wide = FirewallRule("tcp", "0.0.0.0/0", "wide", (6000, 7000))
    assert messages(policy, ruleset(wide)) == ["rule 0 admits 0.0.0.0/0 (the whole internet) to ports 6333-6335, 6379."]
    assert messages(policy, ruleset(FirewallRule("tcp", "198.51.100.0/24", "pg", (5432, 5432)))) == []


def stack(instance: dict[str, Any] | None = None, *, firewalls: bool = True, key: bool = True, **fleet: Any) -> Any:
    """A pool as GpuPool builds it: key, a ruleset per candidate region, the record, and the fleet."""
    spec = instance or INSTANCE

    def build() -> None:
        ssh_key = LambdaSshKey("key", LambdaSshKeyArgs(name="sophia-prod-ai-core", public_key="ssh-ed25519 AAAA x"))
        regions = [spec["region"], *spec.get("fallback_regions", [])]
        rulesets = {
            region: LambdaFirewallRuleset(
                f"fw-{region}", LambdaFirewallRulesetArgs(name=f"fw-{region}", region=region, rules=[SSH])
            )
            for region in (regions if firewalls else [])
        }
        record = LambdaInstance(
            "ai-core-0",
            LambdaInstanceArgs(**spec, firewall_ruleset_ids=[r.ruleset_id for r in rulesets.values()]),
            pulumi.ResourceOptions(depends_on=[ssh_key] if key else []),
        )
        member = record.fleet_member({region: [r.ruleset_id] for region, r in rulesets.items()}, "ai-core")
        LambdaFleet("fleet", LambdaFleetArgs(members=[{**member, **fleet}]))

    return program(build)


LAMBDA_POLICIES = (
    "lambda-cloud-instance-allowed-region",
    "lambda-cloud-instance-managed-ssh-key",
    "lambda-cloud-instance-firewall-given",
    "lambda-cloud-instance-firewall-each-region",
)


@pytest.mark.parametrize("policy", LAMBDA_POLICIES)
def test_a_pool_as_gpupool_builds_it_passes(policy: str) -> None:
    assert messages(policy, stack()) == []
    assert skipped(policy, stack()) == []


def test_allowed_regions_include_fallbacks_on_records_and_fleet_members() -> None:
    policy = "lambda-cloud-instance-allowed-region"
    config = {"allowedRegions": ["us-west-1", "us-west-2"]}
    outside = with_(INSTANCE, fallback_regions=["us-west-2", "europe-central-1"])
    assert sorted(messages(policy, stack(outside), config)) == [
        "member 0 (sophia-prod-ai-core-0): regions europe-central-1 are not approved.",
        "regions europe-central-1 are not approved.",
    ]
    # A fleet member launching somewhere its record does not say is judged on its own.
    assert messages(policy, stack(region="asia-south-1"), config) == [
        "member 0 (sophia-prod-ai-core-0): regions asia-south-1 are not approved."
    ]


def test_managed_ssh_key() -> None:
    policy = "lambda-cloud-instance-managed-ssh-key"
    hand_made = with_(INSTANCE, ssh_key_names=["laptop-key"])
    assert sorted(messages(policy, stack(hand_made))) == [
        "ai-core-0: SSH key laptop-key is not managed here.",
        "fleet: member 0 (sophia-prod-ai-core-0): SSH key laptop-key is not managed here.",
    ]


def test_every_instance_is_behind_a_stack_firewall_in_every_region() -> None:
    bare = stack(firewalls=False)
    assert sorted(messages("lambda-cloud-instance-firewall-given", bare)) == [
        "member 0 (sophia-prod-ai-core-0): no firewall ruleset in us-west-1, us-west-2.",
        "no firewall ruleset: the account's global rules would apply.",
    ]
    assert messages("lambda-cloud-instance-firewall-each-region", bare) == ["ai-core-0: no firewall ruleset."]

    def one_region_only() -> None:
        ruleset = LambdaFirewallRuleset("fw", LambdaFirewallRulesetArgs(name="fw", region="us-west-1", rules=[SSH]))
        LambdaInstance("ai-core-0", LambdaInstanceArgs(**INSTANCE, firewall_ruleset_ids=[ruleset.ruleset_id]))

    assert messages("lambda-cloud-instance-firewall-each-region", program(one_region_only)) == [
        "ai-core-0: no firewall ruleset of this stack in us-west-2."
    ]


def test_a_first_preview_with_unknown_ruleset_ids_still_judges_the_launch() -> None:
    def build() -> None:
        ruleset = LambdaFirewallRuleset("fw", LambdaFirewallRulesetArgs(name="fw", region="us-west-1", rules=[SSH]))
        LambdaInstance(
            "ai-core-0",
            LambdaInstanceArgs(**with_(INSTANCE, region="asia-south-1"), firewall_ruleset_ids=[ruleset.ruleset_id]),
        )

    run = program(build, first_preview=True)
    assert messages("lambda-cloud-instance-allowed-region", run, {"allowedRegions": ["us-west-1", "us-west-2"]}) == [
        "regions asia-south-1 are not approved."
    ]
    assert messages("lambda-cloud-instance-firewall-given", run) == []
