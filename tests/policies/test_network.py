"""Network rules, written with pulumi-aws's classes: every way to write an inbound rule (inline, the
default group, standalone rules, protocol names and numbers) and every way to add up to the internet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from tests.policies.helpers import aws, messages, program, skipped

POLICY = "aws-ec2-securitygroup-no-public-data-ports"
VPC_ONLY = ["10.40.0.0/16"]
SOURCES = {
    "zero": (["0.0.0.0/0"], "0.0.0.0/0 (the whole internet)"),
    "halves": (["0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/1, 128.0.0.0/1 (the whole internet)"),
    "half": (["0.0.0.0/1"], "0.0.0.0/1 ("),
    "mapped-v6": (["::ffff:0.0.0.0/96"], "::ffff:0.0.0.0/96 (the whole internet)"),
}

# Every resource that can open a port, with (protocol, from, to, sources) -> a builder.
OPENERS: dict[str, Callable[[str, int, int, list[str]], object]] = {
    "inline": lambda proto, low, high, cidrs: aws.ec2.SecurityGroup(
        "sg", ingress=[{"protocol": proto, "from_port": low, "to_port": high, "cidr_blocks": cidrs}]
    ),
    "default-group": lambda proto, low, high, cidrs: aws.ec2.DefaultSecurityGroup(
        "default",
        vpc_id="vpc-1",
        ingress=[{"protocol": proto, "from_port": low, "to_port": high, "cidr_blocks": cidrs}],
    ),
    "group-rule": lambda proto, low, high, cidrs: aws.ec2.SecurityGroupRule(
        "rule",
        type="ingress",
        security_group_id="sg-1",
        protocol=proto,
        from_port=low,
        to_port=high,
        cidr_blocks=cidrs,
    ),
    "ingress-rule": lambda proto, low, high, cidrs: [
        aws.vpc.SecurityGroupIngressRule(
            f"rule-{i}", security_group_id="sg-1", ip_protocol=proto, from_port=low, to_port=high, cidr_ipv4=cidr
        )
        for i, cidr in enumerate(cidrs)
    ],
}


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("source", SOURCES)
def test_ssh_to_the_internet_however_written(opener: str, source: str) -> None:
    cidrs, described = SOURCES[source]
    assert messages(POLICY, program(lambda: OPENERS[opener]("tcp", 22, 22, VPC_ONLY))) == []
    if opener == "ingress-rule" and len(cidrs) > 1:
        # Two standalone rules: each half is wide enough on its own.
        found = messages(POLICY, program(lambda: OPENERS[opener]("tcp", 22, 22, cidrs)))
        assert len(found) == 2
        return
    found = messages(POLICY, program(lambda: OPENERS[opener]("tcp", 22, 22, cidrs)))
    assert len(found) == 1
    assert described in found[0]
    assert found[0].endswith("to port 22.")


@pytest.mark.parametrize(
    ("protocol", "low", "high", "expected"),
    [
        ("tcp", 5432, 5432, "port 5432"),
        ("6", 6000, 7000, "ports 6333-6335, 6379"),
        ("-1", 0, 0, "all ports"),
        ("all", 0, 0, "all ports"),
        ("tcp", 0, 65535, "all ports"),
        ("tcp", 3389, 3389, "port 3389"),
        ("tcp", 16379, 16379, "port 16379"),
    ],
)
def test_data_admin_and_all_ports(protocol: str, low: int, high: int, expected: str) -> None:
    found = messages(POLICY, program(lambda: OPENERS["inline"](protocol, low, high, ["0.0.0.0/0"])))
    assert found == [f"ingress 0 admits 0.0.0.0/0 (the whole internet) to {expected}."]


def test_public_https_and_private_data_ports_pass() -> None:
    def build() -> None:
        aws.ec2.SecurityGroup(
            "sg",
            ingress=[
                {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]},
                {"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": ["10.40.0.0/16"]},
                {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["203.0.113.0/24"]},
            ],
        )

    assert messages(POLICY, program(build)) == []


def test_ipv6_everyone() -> None:
    def build() -> None:
        aws.ec2.SecurityGroup(
            "sg", ingress=[{"protocol": "tcp", "from_port": 6379, "to_port": 6379, "ipv6_cidr_blocks": ["::/0"]}]
        )

    assert messages(POLICY, program(build)) == ["ingress 0 admits ::/0 (the whole internet) to port 6379."]


def test_egress_rules_are_not_ingress() -> None:
    def build() -> None:
        aws.ec2.SecurityGroupRule(
            "out",
            type="egress",
            security_group_id="sg-1",
            protocol="-1",
            from_port=0,
            to_port=0,
            cidr_blocks=["0.0.0.0/0"],
        )

    assert messages(POLICY, program(build)) == []


def test_an_unknown_source_is_reported_and_the_other_rules_still_judged() -> None:
    def build() -> None:
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.40.0.0/16")
        aws.ec2.SecurityGroup(
            "sg",
            ingress=[
                {"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": [vpc.arn]},
                {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]},
            ],
        )

    run = program(build, first_preview=True)
    assert messages(POLICY, run) == ["ingress 1 admits 0.0.0.0/0 (the whole internet) to port 22."]
    assert skipped(POLICY, run) == ["sg: ingress.0.cidrBlocks.0 can't be known during preview"]


def test_default_security_group_has_no_rules() -> None:
    policy = "aws-ec2-defaultsecuritygroup-no-rules"
    assert messages(policy, program(lambda: aws.ec2.DefaultSecurityGroup("d", vpc_id="vpc-1"))) == []
    egress: list[Any] = [{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}]
    assert messages(policy, program(lambda: aws.ec2.DefaultSecurityGroup("d", vpc_id="vpc-1", egress=egress))) == [
        "the default security group has 1 egress rule."
    ]


def vpc_stack(*, default_group: bool = True, flow_log: bool = True, first_preview: bool = False) -> Any:
    def build() -> None:
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.40.0.0/16")
        if default_group:
            aws.ec2.DefaultSecurityGroup("vpc-default", vpc_id=vpc.id)
        if flow_log:
            aws.ec2.FlowLog(
                "vpc-flow",
                vpc_id=vpc.id,
                traffic_type="ALL",
                log_destination_type="s3",
                log_destination="arn:aws:s3:::a",
            )

    return program(build, first_preview=first_preview)


@pytest.mark.parametrize("first_preview", [False, True])
def test_every_vpc_has_its_default_group_managed_and_flow_logs(first_preview: bool) -> None:
    for policy in ("aws-ec2-vpc-default-security-group-managed", "aws-ec2-vpc-flow-logs"):
        assert messages(policy, vpc_stack(first_preview=first_preview)) == []
    assert messages("aws-ec2-vpc-default-security-group-managed", vpc_stack(default_group=False)) == [
        "vpc: its default security group is not managed (AWS's allows traffic)."
    ]
    assert messages("aws-ec2-vpc-flow-logs", vpc_stack(flow_log=False)) == ["vpc: no flow log."]


def test_subnets_give_no_public_ip_by_default() -> None:
    policy = "aws-ec2-subnet-no-public-ip-on-launch"

    def subnet(flag: bool) -> Any:
        return program(
            lambda: aws.ec2.Subnet("s", vpc_id="vpc-1", cidr_block="10.40.0.0/20", map_public_ip_on_launch=flag)
        )

    assert messages(policy, subnet(False)) == []
    assert messages(policy, subnet(True)) == ["mapPublicIpOnLaunch is true."]


def test_rules_reach_resources_under_an_explicit_provider() -> None:
    def build() -> None:
        provider = aws.Provider("dr", region="us-east-1")
        OPENERS["inline"]("tcp", 22, 22, ["0.0.0.0/0"])
        aws.ec2.SecurityGroup(
            "sg2",
            ingress=[{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}],
            opts=pulumi.ResourceOptions(provider=provider),
        )

    assert len(messages(POLICY, program(build))) == 2
