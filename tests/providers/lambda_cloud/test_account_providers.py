"""SSH key, firewall ruleset and filesystem providers against the emulator, with engine-shaped inputs."""

from __future__ import annotations

from typing import Any

import pytest

from providers.lambda_cloud.account_providers import FilesystemProvider, FirewallRulesetProvider, SshKeyProvider
from providers.lambda_cloud.errors import LambdaApiError
from tests.providers.lambda_cloud.emulator import LambdaEmulator

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3x ops@sophia"
# As the provider host hands them over: numbers are floats.
RULES: list[dict[str, Any]] = [
    {"protocol": "tcp", "port_range": [22.0, 22.0], "source_network": "203.0.113.0/24", "description": "SSH"}
]


def test_ssh_key_lifecycle(emulator: LambdaEmulator) -> None:
    provider = SshKeyProvider()
    props = {"name": "sophia-prod-ai-core", "public_key": PUBLIC_KEY}
    assert provider.check({}, props).failures == []
    created = provider.create(props)
    assert created.outs == {"name": props["name"], "public_key": PUBLIC_KEY, "key_id": created.id}
    again = provider.create(props)  # a rerun after a lost answer adopts the same key
    assert again.id == created.id
    assert provider.read(created.id, {}).id == created.id
    assert provider.diff(created.id, dict(props), {**props, "public_key": PUBLIC_KEY + "2"}).replaces == ["public_key"]
    provider.delete(created.id, {})
    provider.delete(created.id, {})
    assert provider.read(created.id, {}).id is None


def test_ssh_key_name_taken_by_another_key(emulator: LambdaEmulator) -> None:
    emulator.add_ssh_key("taken")
    with pytest.raises(LambdaApiError, match="already exists with a different public key"):
        SshKeyProvider().create({"name": "taken", "public_key": PUBLIC_KEY})


@pytest.mark.parametrize(
    ("props", "prop"),
    [
        ({"name": "", "public_key": PUBLIC_KEY}, "name"),
        ({"name": "k", "public_key": "not a key"}, "public_key"),
    ],
)
def test_ssh_key_check(props: dict[str, Any], prop: str) -> None:
    assert [f.property for f in SshKeyProvider().check({}, props).failures] == [prop]


def test_firewall_ruleset_lifecycle(emulator: LambdaEmulator) -> None:
    provider = FirewallRulesetProvider()
    props = {"name": "sophia-prod-ai-core-us-west-1", "region": "us-west-1", "rules": RULES}
    assert provider.check({}, props).failures == []
    created = provider.create(props)
    assert created.outs is not None
    assert created.outs["rules"][0]["port_range"] == [22, 22]
    assert provider.diff(created.id, created.outs, props).changes is False  # 22.0 and 22 are the same port
    wider = [{**RULES[0], "source_network": "198.51.100.0/24"}]
    diff = provider.diff(created.id, created.outs, {**props, "rules": wider})
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, created.outs, {**props, "rules": wider})
    assert updated.outs is not None
    assert updated.outs["rules"][0]["source_network"] == "198.51.100.0/24"
    assert provider.diff(created.id, created.outs, {**props, "region": "us-east-1"}).replaces == ["region"]
    provider.delete(created.id, {})
    provider.delete(created.id, {})
    assert provider.read(created.id, {}).id is None


@pytest.mark.parametrize(
    ("rule", "prop"),
    [
        (
            {"protocol": "tcp", "port_range": [22.5, 23.0], "source_network": "1.2.3.0/24", "description": ""},
            "port_range",
        ),
        ({"protocol": "tcp", "port_range": [0, 22], "source_network": "1.2.3.0/24", "description": ""}, "port_range"),
        ({"protocol": "tcp", "port_range": [30, 22], "source_network": "1.2.3.0/24", "description": ""}, "port_range"),
        ({"protocol": "icmp", "port_range": [1, 2], "source_network": "1.2.3.0/24", "description": ""}, "port_range"),
        ({"protocol": "sctp", "port_range": [1, 2], "source_network": "1.2.3.0/24", "description": ""}, "protocol"),
        ({"protocol": "udp", "port_range": [1, 2], "source_network": "nowhere", "description": ""}, "source_network"),
        (
            {"protocol": "udp", "port_range": [1, 2], "source_network": "1.2.3.4", "description": "x" * 129},
            "description",
        ),
    ],
)
def test_firewall_rule_check(rule: dict[str, Any], prop: str) -> None:
    result = FirewallRulesetProvider().check({}, {"name": "r", "region": "us-west-1", "rules": [rule]})
    assert [f.property for f in result.failures] == [f"rules[0].{prop}"]


def test_filesystem_lifecycle(emulator: LambdaEmulator) -> None:
    provider = FilesystemProvider()
    props = {"name": "sophia-models", "region": "us-west-1"}
    assert provider.check({}, props).failures == []
    assert [f.property for f in provider.check({}, {"name": "1bad", "region": "x"}).failures] == ["name"]
    created = provider.create(props)
    assert created.outs is not None
    assert created.outs["mount_point"] == "/lambda/nfs/sophia-models"
    assert provider.create(props).id == created.id  # adopted, not duplicated
    assert provider.read(created.id, {}).id == created.id
    provider.delete(created.id, {})
    provider.delete(created.id, {})
    assert provider.read(created.id, {}).id is None
