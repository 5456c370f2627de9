"""Lambda Cloud rules: no SSH or data port open to the internet (however the ranges are split),
approved regions, keys the stack manages, every instance behind a managed firewall."""

from __future__ import annotations

from pulumi_policy import Severity

from policies.catalog import load_lambda_catalog
from policies.common import Category, Ctx, Rule
from policies.model.lambda_cloud import LAUNCH_TYPES, Launch
from policies.model.network import LAMBDA_RULESET
from policies.model.subject import StackView, Subject
from policies.model.values import items, need, text
from policies.rules.cost import prefix
from policies.rules.network import DATA_PORTS, SSH, report_public_ingress

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
LAMBDA_SSH_KEY = "pulumi-python:dynamic/lambda:SshKey"

PUBLIC_SSH = Rule(
    "lambda-cloud-firewall-no-public-ssh",
    "No Lambda firewall rule may open SSH (or every port) to the internet.",
    Severity.CRITICAL,
    "Allow port 22 only from the operators' networks (sophia:lambdaAccess.sshAllowedCidrs).",
    Category.SECURITY,
)


def _public_ssh(subject: Subject, ctx: Ctx) -> None:
    report_public_ingress(subject, ctx, (SSH,))


PUBLIC_DATA_PORTS = Rule(
    "lambda-cloud-firewall-no-public-data-ports",
    "No Lambda firewall rule may open PostgreSQL, Redis or Qdrant ports (or all ports) to the internet.",
    Severity.CRITICAL,
    "Reach data stores over the private network; open a port to the internet only for public endpoints such as 443.",
    Category.SECURITY,
)


def _public_data_ports(subject: Subject, ctx: Ctx) -> None:
    report_public_ingress(subject, ctx, DATA_PORTS)


ALLOWED_REGIONS = Rule(
    "lambda-cloud-instance-allowed-region",
    "Instances may launch only in approved regions (fallback regions included).",
    Severity.HIGH,
    "Use an approved region in sophia:lambdaRegion / lambdaFallbackRegions, or approve it in the policy config.",
    Category.SECURITY,
    config={
        "allowedRegions": {
            "type": "array",
            "items": {"type": "string"},
            "default": sorted(load_lambda_catalog().regions),
        }
    },
)


def _allowed_regions(subject: Subject, ctx: Ctx) -> None:
    allowed = set(ctx.config["allowedRegions"])

    def check(launch: Launch) -> None:
        outside = [str(r) for r in launch.regions if r not in allowed]
        if outside:
            ctx.violation(f"{prefix(launch)}regions {', '.join(outside)} are not approved.")

    ctx.each_launch(subject, check)


MANAGED_KEY = Rule(
    "lambda-cloud-instance-managed-ssh-key",
    "Instances must use an SSH key this stack manages (a LambdaSshKey), not a hand-made one.",
    Severity.HIGH,
    "Create the key with LambdaSshKey (GpuPool does) and pass its name.",
    Category.SECURITY,
)


def _managed_key(view: StackView, ctx: Ctx) -> None:
    managed: set[object] = set()
    ctx.each(view.of_type(LAMBDA_SSH_KEY), lambda key: managed.add(key.get("name")))

    def check(instance: Subject) -> None:
        def one(launch: Launch) -> None:
            unmanaged = [k for k in launch.ssh_key_names if k not in managed]
            if unmanaged:
                keys = ", ".join(map(str, unmanaged))
                ctx.violation(f"{instance.name}: {prefix(launch)}SSH key {keys} is not managed here.", instance.urn)

        ctx.each_launch(instance, one)

    ctx.each(view.of_type(*LAUNCH_TYPES), check)


FIREWALLED = Rule(
    "lambda-cloud-instance-firewall-each-region",
    "Every instance must sit behind a firewall ruleset of this stack in each region it may launch in.",
    Severity.HIGH,
    "Pass firewall_ruleset_ids: one LambdaFirewallRuleset per candidate region (GpuPool does); without one, the "
    "account's global rules apply, outside review.",
    Category.SECURITY,
)


def _firewalled(view: StackView, ctx: Ctx) -> None:
    def check(instance: Subject) -> None:
        rulesets = [
            view.by_urn[u] for u in instance.property_dependencies.get("firewall_ruleset_ids", ()) if u in view.by_urn
        ]
        given = items(instance.get("firewall_ruleset_ids"))
        if not given:
            ctx.violation(f"{instance.name}: no firewall ruleset.", instance.urn)
            return
        covered = {text(r.get("region")) for r in rulesets if r.resource_type == LAMBDA_RULESET}
        regions = [text(instance.get("region")), *(text(r) for r in items(instance.get("fallback_regions")))]
        missing = [str(r) for r in regions if r not in covered]
        if missing:
            ctx.violation(f"{instance.name}: no firewall ruleset of this stack in {', '.join(missing)}.", instance.urn)

    ctx.each(view.of_type(LAMBDA_INSTANCE), check)


FIREWALL_GIVEN = Rule(
    "lambda-cloud-instance-firewall-given",
    "Every launch must name a firewall ruleset (a fleet member: one in each region it may launch in).",
    Severity.HIGH,
    "Pass firewall_ruleset_ids (GpuPool passes one ruleset per candidate region; GpuFleet maps them by region).",
    Category.SECURITY,
)


def _firewall_given(subject: Subject, ctx: Ctx) -> None:
    def check(launch: Launch) -> None:
        if launch.firewall_by_region is None:
            if not need(launch.firewall_ids):
                ctx.violation("no firewall ruleset: the account's global rules would apply.")
            return
        bare = [str(r) for r in launch.regions if not need(launch.firewall_by_region.get(str(r), ()))]
        if bare:
            ctx.violation(f"{prefix(launch)}no firewall ruleset in {', '.join(bare)}.")

    ctx.each_launch(subject, check)


POLICIES = [
    PUBLIC_SSH.resource([LAMBDA_RULESET], _public_ssh),
    PUBLIC_DATA_PORTS.resource([LAMBDA_RULESET], _public_data_ports),
    ALLOWED_REGIONS.resource(LAUNCH_TYPES, _allowed_regions),
    MANAGED_KEY.stack(_managed_key),
    FIREWALL_GIVEN.resource(LAUNCH_TYPES, _firewall_given),
    FIREWALLED.stack(_firewalled),
]
