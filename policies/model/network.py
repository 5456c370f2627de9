"""Inbound rules from every shape that opens a port: security groups (inline `ingress`, the default
group, `ec2/securityGroupRule`, `vpc/securityGroupIngressRule`) and Lambda Cloud firewall rulesets.

Each becomes `Ingress(protocol, ports, sources)`: protocol names and numbers unified ("-1", "all",
"6", "tcp"), "all protocols" meaning every port, and the sources as one `CidrSet`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from policies.model.cidr import CidrSet
from policies.model.values import Unknown, items, mapping, number, read

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LAMBDA_RULESET = "pulumi-python:dynamic/lambda:FirewallRuleset"
INGRESS_TYPES = frozenset({SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE, LAMBDA_RULESET})

_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp", "1": "icmp"}
_PROTOCOLS |= {"icmp": "icmp", "58": "icmpv6", "icmpv6": "icmpv6"}
ALL_PORTS = (0, 65535)


@dataclass(frozen=True)
class Ingress:
    """One inbound permission."""

    where: str
    """Which rule, for messages: `ingress 0`, `rule 2`, or the resource itself."""
    protocol: str
    """`all`, `tcp`, `udp`, `icmp`, `icmpv6`, or the number AWS was given."""
    ports: tuple[int, int]
    """Inclusive range; every port when the protocol is `all`."""
    sources: CidrSet

    def opens(self, ranges: Iterable[tuple[int, int]]) -> list[str]:
        """Which of `ranges` this rule reaches, as '22' or '6333-6335'."""
        if self.protocol not in ("all", "tcp", "udp"):
            return []
        low, high = self.ports
        return [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges if low <= b and high >= a]

    @property
    def all_ports(self) -> bool:
        return self.protocol == "all" or self.ports == ALL_PORTS


def _protocol(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    name = str(value).strip().lower()
    return _PROTOCOLS.get(name, name)


def _ports(protocol: str, low: Any, high: Any) -> tuple[int, int]:
    if protocol == "all":
        return ALL_PORTS
    first, last = number(low), number(high)
    if first is None and last is None:
        return ALL_PORTS
    first = first if first is not None else last
    last = last if last is not None else first
    assert first is not None
    assert last is not None
    if first < 0 or last < 0:  # -1 means every port (ICMP types aside)
        return ALL_PORTS
    return int(first), int(last)


def _rule(where: str, protocol: Any, low: Any, high: Any, sources: Iterable[Any]) -> Ingress:
    name = _protocol(protocol)
    return Ingress(where, name, _ports(name, low, high), CidrSet.of(sources))


def _aws_inline(rule: Mapping[str, Any], where: str) -> Ingress:
    sources = [*items(rule.get("cidrBlocks")), *items(rule.get("ipv6CidrBlocks"))]
    return _rule(where, rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"), sources)


def ingress_of(resource_type: str, props: Mapping[str, Any]) -> tuple[Ingress | Unknown, ...]:  # noqa: PLR0911
    """Every inbound rule the resource declares; an entry that is not known yet is `Unknown`."""
    if resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        rules = read(lambda: items(props.get("ingress")))
        if isinstance(rules, Unknown):
            return (rules,)
        found = rules

        def inline(i: int) -> Ingress:
            return _aws_inline(mapping(found[i]), f"ingress {i}")

        return tuple(read(partial(inline, i)) for i in range(len(found)))
    if resource_type == SECURITY_GROUP_RULE:
        kind = read(lambda: props.get("type"))
        if isinstance(kind, Unknown):
            return (kind,)
        return (read(lambda: _aws_inline(props, "rule")),) if kind == "ingress" else ()
    if resource_type == INGRESS_RULE:

        def standalone() -> Ingress:
            sources = [props.get("cidrIpv4"), props.get("cidrIpv6")]
            return _rule("rule", props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"), sources)

        return (read(standalone),)
    if resource_type == LAMBDA_RULESET:
        rules = read(lambda: items(props.get("rules")))
        if isinstance(rules, Unknown):
            return (rules,)

        def lambda_rule(i: int) -> Ingress:
            rule = mapping(rules[i])
            span = list(items(rule.get("port_range")))
            low, high = [*span, None, None][:2]
            return _rule(f"rule {i}", rule.get("protocol"), low, high, [rule.get("source_network")])

        return tuple(read(partial(lambda_rule, i)) for i in range(len(rules)))
    return ()
