"""InstanceProvider against the emulator: every fault, and nothing left billing."""

from __future__ import annotations

from typing import Any

import pytest

from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG, InstanceFailedError
from providers.lambda_cloud.provider import InstanceProvider
from tests.providers.lambda_cloud.conftest import instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator


def tagged(emulator: LambdaEmulator, key: str) -> list[str]:
    return [i.id for i in emulator.live() if any(t["key"] == LAUNCH_KEY_TAG and t["value"] == key for t in i.tags)]


def test_create_waits_for_active_and_reports_outputs(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props(user_data="#cloud-config\n")
    result = provider.create(props)
    assert result.outs is not None
    assert result.outs["status"] == "active"
    assert result.outs["instance_id"] == result.id
    assert result.outs["region"] == "us-west-1"
    assert result.outs["price_cents_per_hour"] == 75
    assert result.outs["ip"]
    assert result.outs["private_ip"]
    assert result.outs["hostname"]
    assert "user_data" not in result.outs
    assert len(result.outs["user_data_sha256"]) == 64
    assert tagged(emulator, props["launch_key"]) == [result.id]
    instance = emulator.instances[result.id]
    assert {t["key"]: t["value"] for t in instance.tags}["pool"] == "dev"


def test_capacity_fails_over_in_order(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    emulator.capacity[("us-west-2", "gpu_1x_a10")] = 0
    result = provider.create(instance_props(fallback_regions=["us-west-2", "us-east-1", "us-south-1"]))
    assert result.outs is not None
    assert result.outs["region"] == "us-east-1"
    assert result.outs["requested_region"] == "us-west-1"
    assert len(emulator.live()) == 1


def test_no_capacity_anywhere_launches_nothing(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    for region in ("us-west-1", "us-west-2"):
        emulator.capacity[(region, "gpu_1x_a10")] = 0
    with pytest.raises(LambdaApiError, match="no capacity for gpu_1x_a10 in us-west-1, us-west-2") as caught:
        provider.create(instance_props(fallback_regions=["us-west-2"]))
    assert caught.value.code == "instance-operations/launch/insufficient-capacity"
    assert emulator.live() == []


@pytest.mark.parametrize("status_code", [(500, "global/internal-error"), (503, "provider/internal-unavailable")])
def test_error_after_accepted_launch_adopts_instead_of_relaunching(
    provider: InstanceProvider, emulator: LambdaEmulator, status_code: tuple[int, str]
) -> None:
    emulator.faults.launch_then_error.append(status_code)
    props = instance_props()
    result = provider.create(props)
    assert emulator.launches_accepted == 1
    assert tagged(emulator, props["launch_key"]) == [result.id]


def test_dropped_connection_after_launch_adopts(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    emulator.faults.launch_then_drop = 1
    props = instance_props()
    result = provider.create(props)
    assert emulator.launches_accepted == 1
    assert tagged(emulator, props["launch_key"]) == [result.id]


def test_refused_launch_with_5xx_is_retried_once_nothing_appeared(
    provider: InstanceProvider, emulator: LambdaEmulator
) -> None:
    emulator.faults.errors.append(("POST", "/instance-operations/launch", 502, "provider/internal-unavailable", 1))
    props = instance_props()
    result = provider.create(props)
    assert emulator.launches_accepted == 1
    assert tagged(emulator, props["launch_key"]) == [result.id]


def test_instance_left_by_a_crashed_run_is_adopted(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props()
    orphan = provider.client().launch_instance(
        {
            "region_name": "us-west-1",
            "instance_type_name": "gpu_1x_a10",
            "ssh_key_names": props["ssh_key_names"],
            "name": props["name"],
            "tags": [{"key": LAUNCH_KEY_TAG, "value": props["launch_key"]}],
        }
    )
    result = provider.create(props)
    assert result.id == orphan
    assert emulator.launches_accepted == 1


@pytest.mark.parametrize("fate", ["unhealthy", "preempted"])
def test_failed_boot_terminates_before_raising(provider: InstanceProvider, emulator: LambdaEmulator, fate: str) -> None:
    emulator.faults.fates.append(fate)
    with pytest.raises(InstanceFailedError, match=f"became {fate}"):
        provider.create(instance_props())
    assert emulator.launches_accepted == 1
    assert emulator.live() == []


def test_wait_timeout_terminates_before_raising(
    provider: InstanceProvider, emulator: LambdaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.boot_s = {1: 10_000.0}
    monkeypatch.setattr("providers.lambda_cloud.launcher.WAIT_TIMEOUT_S", {1: 60.0})
    with pytest.raises(InstanceFailedError, match="not active after"):
        provider.create(instance_props())
    assert emulator.launches_accepted == 1
    assert emulator.live() == []


@pytest.mark.parametrize(
    ("code", "status"),
    [("global/quota-exceeded", 400), ("global/invalid-parameters", 400), ("global/account-inactive", 403)],
)
def test_fail_fast_codes_are_not_retried(
    provider: InstanceProvider, emulator: LambdaEmulator, code: str, status: int
) -> None:
    emulator.faults.errors.append(("POST", "/instance-operations/launch", status, code, 5))
    with pytest.raises(LambdaApiError) as caught:
        provider.create(instance_props())
    assert caught.value.code == code
    assert emulator.calls["POST /instance-operations/launch"] == 1
    assert emulator.live() == []


def test_invalid_key_fails_fast(provider: InstanceProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_API_KEY", "wrong-key")
    with pytest.raises(LambdaApiError) as caught:
        provider.create(instance_props())
    assert caught.value.code == "global/invalid-api-key"
    assert "wrong-key" not in str(caught.value)


def test_read_refreshes_and_reports_gone(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    props = instance_props()
    created = provider.create(props)
    assert created.outs is not None
    read = provider.read(created.id, created.outs)
    assert read.id == created.id
    assert read.outs is not None
    assert read.outs["status"] == "active"
    assert read.outs["requested_region"] == "us-west-1"
    provider.delete(created.id, created.outs)
    assert provider.read(created.id, created.outs).id is None  # terminating counts as gone
    assert provider.read("0" * 32, created.outs).id is None  # missing


def test_delete_is_idempotent(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    created = provider.create(instance_props())
    provider.delete(created.id, {})
    provider.delete(created.id, {})  # already terminating: the API's unknown error counts as done
    provider.delete("f" * 32, {})  # missing
    assert emulator.live() == []


def test_update_renames_in_place(provider: InstanceProvider, emulator: LambdaEmulator) -> None:
    olds = instance_props()
    created = provider.create(olds)
    assert created.outs is not None
    news = {**olds, "name": "pool-0-renamed"}
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes is True
    assert diff.replaces == []
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs is not None
    assert updated.outs["name"] == "pool-0-renamed"
    assert emulator.instances[created.id].name == "pool-0-renamed"


@pytest.mark.parametrize(
    ("key", "value", "replaced"),
    [
        ("instance_type", "gpu_1x_a100", "instance_type"),
        ("region", "us-east-1", "region"),
        ("image", {"family": "lambda-stack-24-04"}, "image"),
        ("user_data", "#cloud-config\nruncmd: []\n", "user_data"),
        ("ssh_key_names", ["other-key"], "ssh_key_names"),
    ],
)
def test_diff_replaces_what_the_api_cannot_change(key: str, value: object, replaced: str) -> None:
    provider = InstanceProvider()
    olds = instance_props()
    outs = InstanceProvider._outputs(olds, _fake_instance())
    diff = provider.diff("id", outs, {**olds, key: value})
    assert diff.replaces == [replaced]
    assert diff.delete_before_replace is True


def test_diff_without_changes_and_fallbacks_update_in_place() -> None:
    provider = InstanceProvider()
    olds = instance_props(fallback_regions=["us-west-2"], user_data="x")
    outs = InstanceProvider._outputs(olds, {**_fake_instance(), "region": {"name": "us-west-2", "description": ""}})
    assert provider.diff("id", outs, dict(olds)).changes is False
    changed = provider.diff("id", outs, {**olds, "fallback_regions": ["us-east-1"]})
    assert (changed.changes, changed.replaces) == (True, [])


def _fake_instance() -> dict[str, object]:
    return {
        "id": "abc",
        "region": {"name": "us-west-1", "description": ""},
        "status": "active",
        "instance_type": {"price_cents_per_hour": 75},
    }


@pytest.mark.parametrize(
    ("change", "prop"),
    [
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"ssh_key_names": ["a", "b"]}, "ssh_key_names"),
        ({"ssh_key_names": []}, "ssh_key_names"),
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
