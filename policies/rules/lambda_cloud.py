"""Lambda Cloud rules: no SSH from the world, approved regions, keys the stack manages."""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policies.catalog import load_lambda_catalog
from policies.common import DATA_PORTS, Category, Rule, config_of, ranges_opened, resource_policy, stack_policy

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
LAMBDA_RULESET = "pulumi-python:dynamic/lambda:FirewallRuleset"
LAMBDA_SSH_KEY = "pulumi-python:dynamic/lambda:SshKey"

PUBLIC_SSH = Rule(
    "lambda-cloud-firewall-no-public-ssh",
    "No Lambda firewall rule may open SSH (or every port) to the whole internet.",
    Severity.CRITICAL,
    "Allow port 22 only from the operators' networks (sophia:lambdaAccess.sshAllowedCidrs).",
    Category.SECURITY,
)


def _from_world(rule: Any) -> bool:
    try:
        return ipaddress.IPv4Network(str(rule.get("source_network")), strict=False).prefixlen == 0
    except ValueError:
        return False


def _public_ssh(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for index, rule in enumerate(args.props.get("rules") or []):
        if not _from_world(rule):
            continue
        protocol = rule.get("protocol")
        low, high = (rule.get("port_range") or [0, 65535])[:2]
        if protocol == "all" or (protocol == "tcp" and float(low) <= 22 <= float(high)):
            report(f"rule {index} opens SSH to 0.0.0.0/0.", None)


PUBLIC_DATA_PORTS = Rule(
    "lambda-cloud-firewall-no-public-data-ports",
    "No Lambda firewall rule may open PostgreSQL, Redis or Qdrant ports (or all ports) to the whole internet.",
    Severity.CRITICAL,
    "Reach data stores over the private network; open a port to 0.0.0.0/0 only for public endpoints such as 443.",
    Category.SECURITY,
)


def _public_data_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for index, rule in enumerate(args.props.get("rules") or []):
        if not _from_world(rule):
            continue
        if rule.get("protocol") == "all":
            report(f"rule {index} opens all ports to 0.0.0.0/0.", None)
            continue
        if rule.get("protocol") != "tcp":
            continue
        low, high = (float(p) for p in (rule.get("port_range") or [0, 0])[:2])
        opened = ranges_opened(low, high, DATA_PORTS)
        if opened:
            report(f"rule {index} opens {', '.join(opened)} to 0.0.0.0/0.", None)


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


def _allowed_regions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = set(config_of(args, ALLOWED_REGIONS)["allowedRegions"])
    regions = [args.props.get("region"), *(args.props.get("fallback_regions") or [])]
    outside = [str(r) for r in regions if r not in allowed]
    if outside:
        report(f"regions {', '.join(outside)} are not approved.", None)


MANAGED_KEY = Rule(
    "lambda-cloud-instance-managed-ssh-key",
    "Instances must use an SSH key this stack manages (a LambdaSshKey), not a hand-made one.",
    Severity.HIGH,
    "Create the key with LambdaSshKey (GpuPool does) and pass its name.",
    Category.SECURITY,
)


def _managed_key(args: StackValidationArgs, report: ReportViolation) -> None:
    managed = {r.props.get("name") for r in args.resources if r.resource_type == LAMBDA_SSH_KEY}
    for resource in args.resources:
        if resource.resource_type != LAMBDA_INSTANCE:
            continue
        unmanaged = [k for k in resource.props.get("ssh_key_names") or [] if k not in managed]
        if unmanaged:
            report(f"{resource.name}: SSH key {', '.join(map(str, unmanaged))} is not managed here.", resource.urn)


POLICIES = [
    resource_policy(PUBLIC_SSH, [LAMBDA_RULESET], _public_ssh),
    resource_policy(PUBLIC_DATA_PORTS, [LAMBDA_RULESET], _public_data_ports),
    resource_policy(ALLOWED_REGIONS, [LAMBDA_INSTANCE], _allowed_regions),
    stack_policy(MANAGED_KEY, _managed_key),
]
