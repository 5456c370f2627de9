"""InstanceProvider: the record of one instance, against the emulator with engine-shaped inputs."""

from __future__ import annotations

from typing import Any

import pytest

from providers.lambda_cloud.fleet import FleetProvider
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from providers.lambda_cloud.provider import InstanceProvider
from tests.providers.lambda_cloud.conftest import fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tests.providers.lambda_cloud.engine import unknown


def launched(props: dict[str, Any]) -> str:
    """The instance the fleet launches for a recorded instance; its id."""
    outs = FleetProvider().create(fleet_props([props])).outs
    assert outs is not None
    return str(outs["instances"][props["launch_key"]]["instance_id"])


def test_create_records_at_once_with_the_launch_key_as_id(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props(user_data="#cloud-config\n")
    result = provider.create(props)
    assert result.id == props["launch_key"]
    assert result.outs is not None
    assert result.outs["status"] == "recorded"
    assert "user_data" not in result.outs
    assert len(result.outs["user_data_sha256"]) == 64
    assert emulator.calls == {}  # nothing launched, nothing asked: the fleet launches


def test_read_reports_the_live_instance(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props(fallback_regions=["us-west-2"])
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    created = provider.create(props)
    instance_id = launched(props)
    emulator.instances[instance_id].name = "renamed-in-the-console"
    read = provider.read(created.id, created.outs or {})
    assert read.id == created.id
    assert read.outs is not None
    assert read.outs["instance_id"] == instance_id
    assert read.outs["name"] == "renamed-in-the-console"
    assert read.outs["requested_name"] == props["name"]
    assert read.outs["region"] == "us-west-2"
    assert read.outs["requested_region"] == "us-west-1"
    assert read.outs["status"] == "active"
    assert read.outs["live_tags"] == {"pool": "dev", "cost-centre": "cc-1"}
    assert read.outs["price_cents_per_hour"] == 75
    # The live name differs from the requested one: the next up renames it back, in place.
    diff = provider.diff(created.id, read.outs, props)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, read.outs, props)
    assert updated.outs is not None
    assert emulator.instances[instance_id].name == props["name"]


def test_read_of_an_instance_never_launched_or_gone_drops_it(
    provider: InstanceProvider, emulator: LambdaEmulator
) -> None:
    props = instance_props()
    created = provider.create(props)
    assert provider.read(created.id, created.outs or {}).id is None  # recorded, never launched
    launched(props)
    provider.delete(created.id, created.outs or {})
    assert provider.read(created.id, created.outs or {}).id is None  # terminating counts as gone


def test_state_from_before_the_fleet_holds_real_ids_and_still_works(
    provider: InstanceProvider, emulator: LambdaEmulator
) -> None:
    props = instance_props()
    instance_id = launched(props)
    old_outputs = {**InstanceProvider._outputs(props, None), "instance_id": instance_id, "status": "active"}
    read = provider.read(instance_id, old_outputs)
    assert read.id == instance_id
    assert provider.diff(instance_id, old_outputs, props).changes is False
    provider.delete(instance_id, old_outputs)
    assert emulator.live() == []


def test_delete_terminates_whatever_carries_the_key_and_is_idempotent(
    provider: InstanceProvider, emulator: LambdaEmulator
) -> None:
    props = instance_props()
    created = provider.create(props)
    launched(props)
    provider.delete(created.id, created.outs or {})
    provider.delete(created.id, created.outs or {})  # already terminating
    provider.delete("f" * 32, {})  # a missing instance counts as deleted
    assert emulator.live() == []


@pytest.mark.parametrize(
    ("key", "value", "replaced"),
    [
        ("instance_type", "gpu_1x_a100", "instance_type"),
        ("region", "us-east-1", "region"),
        ("image", {"family": "lambda-stack-24-04"}, "image"),
        ("user_data", "#cloud-config\nruncmd: []\n", "user_data"),
        ("file_system_names", ["models"], "file_system_names"),
    ],
)
def test_diff_replaces_only_what_a_running_instance_cannot_change(key: str, value: object, replaced: str) -> None:
    provider = InstanceProvider()
    olds = instance_props()
    outs = InstanceProvider._outputs(olds, None)
    diff = provider.diff(olds["launch_key"], outs, {**olds, key: value})
    assert diff.replaces == [replaced]
    assert diff.delete_before_replace is True


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tags", {"pool": "dev", "cost-centre": "cc-2"}),
        ("tags", {"pool": "dev", "cost-centre": "cc-1", "off-hours": "stop 20:00 start 07:00 UTC"}),
        ("fallback_regions", ["us-east-1"]),
        ("firewall_ruleset_ids", ["a" * 32, "b" * 32]),
        ("ssh_key_names", ["sophia-rotated-key"]),
        ("name", "pool-0-renamed"),
    ],
)
def test_diff_updates_in_place_what_matters_at_launch_only(key: str, value: object) -> None:
    provider = InstanceProvider()
    olds = instance_props()
    outs = InstanceProvider._outputs(olds, None)
    assert provider.diff(olds["launch_key"], outs, dict(olds)).changes is False
    diff = provider.diff(olds["launch_key"], outs, {**olds, key: value})
    assert (diff.changes, diff.replaces) == (True, [])


def test_diff_treats_ports_and_tag_order_as_the_api_does() -> None:
    provider = InstanceProvider()
    olds = instance_props(tags={"b": "2", "a": "1"})
    outs = InstanceProvider._outputs(olds, None)
    assert provider.diff(olds["launch_key"], outs, {**olds, "tags": {"a": "1", "b": "2"}}).changes is False


def test_preview_unknowns_pass_check_and_diff() -> None:
    """A first preview: the rulesets and the key are not created yet, their outputs are unknown."""
    provider = InstanceProvider()
    whole = instance_props(ssh_key_names=unknown(), firewall_ruleset_ids=unknown(), user_data=unknown())
    elements = instance_props(ssh_key_names=[unknown()], firewall_ruleset_ids=[unknown(), unknown()])
    for props in (whole, elements):
        assert provider.check({}, props).failures == []
    olds = InstanceProvider._outputs(instance_props(), None)
    diff = provider.diff(olds["launch_key"], olds, elements)
    assert (diff.changes, diff.replaces) == (True, [])


@pytest.mark.parametrize(
    ("change", "prop"),
    [
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"ssh_key_names": ["a", "b"]}, "ssh_key_names"),
        ({"ssh_key_names": []}, "ssh_key_names"),
        ({"ssh_key_names": [unknown(), unknown()]}, "ssh_key_names"),
        ({"tags": {"Bad-Key": "v"}}, "tags.Bad-Key"),
        ({"tags": {"k" + "x" * 60: "v"}}, "tags.k" + "x" * 60),
        ({"tags": {"owner": "v" * 129}}, "tags.owner"),
        ({"user_data": "x" * 1_000_001}, "user_data"),
        ({"hostname": "Head_Node"}, "hostname"),
        ({"fallback_regions": ["us-west-1"]}, "fallback_regions"),
        ({"image": {"name": "x"}}, "image"),
        ({"launch_key": ""}, "launch_key"),
        ({"region": ""}, "region"),
    ],
)
def test_check_names_the_property(change: dict[str, Any], prop: str) -> None:
    result = InstanceProvider().check({}, instance_props(**change))
    assert [f.property for f in result.failures] == [prop]
    assert result.failures[0].reason


def test_check_accepts_documented_limits() -> None:
    props = instance_props(name="x" * 64, user_data="x" * 1_000_000, tags={"a:b-c": "v" * 128}, hostname="node-1")
    assert InstanceProvider().check({}, props).failures == []


def test_the_launch_key_tag_is_what_finds_an_instance(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props()
    instance_id = launched(props)
    tags = {t["key"]: t["value"] for t in emulator.instances[instance_id].tags}
    assert tags[LAUNCH_KEY_TAG] == props["launch_key"]
