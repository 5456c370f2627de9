"""Network rules: no security group opens administration or data ports to the internet, however the
rule is written (inline, the default group, standalone rules; any CIDR split that adds up to the
internet), default security groups closed, every VPC's traffic logged, no public IPs by default."""

from __future__ import annotations

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule
from policies.model.network import (
    DEFAULT_SECURITY_GROUP,
    INGRESS_RULE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    Ingress,
)
from policies.model.subject import StackView, Subject
from policies.model.values import Unknown, flag, items

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SUBNET = "aws:ec2/subnet:Subnet"
SSH = (22, 22)
RDP = (3389, 3389)
# The platform's data stores: PostgreSQL, Qdrant (HTTP, gRPC, p2p), Redis and its cluster bus.
DATA_PORTS: tuple[tuple[int, int], ...] = ((5432, 5432), (6333, 6335), (6379, 6379), (16379, 16379))
ADMIN_AND_DATA_PORTS = (SSH, RDP, *DATA_PORTS)


def opened_to_internet(rule: Ingress, ports: tuple[tuple[int, int], ...]) -> str | None:
    """'all ports' or 'port 22' / 'ports 6333-6335, 6379' when `rule` opens them to the internet."""
    if not (rule.sources.is_public() or rule.sources.invalid):
        return None
    if rule.all_ports and rule.protocol in ("all", "tcp", "udp"):
        return "all ports"
    opened = rule.opens(ports)
    if not opened:
        return None
    return ("port " if len(opened) == 1 and "-" not in opened[0] else "ports ") + ", ".join(opened)


def report_public_ingress(subject: Subject, ctx: Ctx, ports: tuple[tuple[int, int], ...]) -> None:
    for rule in subject.ingress:
        if isinstance(rule, Unknown):
            ctx.undetermined(f"{rule.where or 'an ingress rule'} can't be known during preview")
            continue
        opened = opened_to_internet(rule, ports)
        if opened:
            invalid = f" (unreadable source {', '.join(rule.sources.invalid)})" if rule.sources.invalid else ""
            ctx.violation(f"{rule.where} admits {rule.sources.describe()}{invalid} to {opened}.")


SG_DATA_PORTS = Rule(
    "aws-ec2-securitygroup-no-public-data-ports",
    "No security group may open SSH, RDP, PostgreSQL, Redis, Qdrant or all ports to the internet.",
    Severity.CRITICAL,
    "Allow the port only from the VPC CIDR, the operators' networks or the security groups that use the store.",
    Category.SECURITY,
)


def _sg_data_ports(subject: Subject, ctx: Ctx) -> None:
    report_public_ingress(subject, ctx, ADMIN_AND_DATA_PORTS)


DEFAULT_SG_CLOSED = Rule(
    "aws-ec2-defaultsecuritygroup-no-rules",
    "A VPC's default security group must have no rules.",
    Severity.HIGH,
    "Manage it with aws.ec2.DefaultSecurityGroup(vpc_id=...) and no ingress or egress; give workloads their own "
    "groups.",
    Category.SECURITY,
)


def _default_sg_closed(subject: Subject, ctx: Ctx) -> None:
    for key in ("ingress", "egress"):
        rules = items(subject.get(key))
        if rules:
            ctx.violation(f"the default security group has {len(rules)} {key} rule{'s' if len(rules) > 1 else ''}.")


VPC_DEFAULT_SG = Rule(
    "aws-ec2-vpc-default-security-group-managed",
    "Every VPC's default security group must be managed by the stack (and so closed).",
    Severity.HIGH,
    "Add aws.ec2.DefaultSecurityGroup(vpc_id=vpc.id) with no rules: AWS's default one admits the group itself "
    "and all egress.",
    Category.SECURITY,
)


def _vpc_default_sg(view: StackView, ctx: Ctx) -> None:
    def check(vpc: Subject) -> None:
        if not view.referencing(vpc, [DEFAULT_SECURITY_GROUP], "vpcId"):
            ctx.violation(f"{vpc.name}: its default security group is not managed (AWS's allows traffic).", vpc.urn)

    ctx.each(view.of_type(VPC), check)


VPC_FLOW_LOGS = Rule(
    "aws-ec2-vpc-flow-logs",
    "Every VPC must log its traffic (a flow log on the VPC).",
    Severity.MEDIUM,
    "Add aws.ec2.FlowLog(vpc_id=vpc.id, traffic_type='ALL') to the audit bucket or CloudWatch Logs.",
    Category.SECURITY,
)


def _vpc_flow_logs(view: StackView, ctx: Ctx) -> None:
    def check(vpc: Subject) -> None:
        if not view.referencing(vpc, [FLOW_LOG], "vpcId"):
            ctx.violation(f"{vpc.name}: no flow log.", vpc.urn)

    ctx.each(view.of_type(VPC), check)


SUBNET_PUBLIC_IP = Rule(
    "aws-ec2-subnet-no-public-ip-on-launch",
    "Subnets must not give instances public IP addresses by default.",
    Severity.MEDIUM,
    "Set map_public_ip_on_launch=False; give a public address explicitly (an Elastic IP, a load balancer).",
    Category.SECURITY,
)


def _subnet_public_ip(subject: Subject, ctx: Ctx) -> None:
    if flag(subject.get("mapPublicIpOnLaunch")) is True:
        ctx.violation("mapPublicIpOnLaunch is true.")


POLICIES = [
    SG_DATA_PORTS.resource([SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE], _sg_data_ports),
    DEFAULT_SG_CLOSED.resource([DEFAULT_SECURITY_GROUP], _default_sg_closed),
    VPC_DEFAULT_SG.stack(_vpc_default_sg),
    VPC_FLOW_LOGS.stack(_vpc_flow_logs),
    SUBNET_PUBLIC_IP.resource([SUBNET], _subnet_public_ip),
]
