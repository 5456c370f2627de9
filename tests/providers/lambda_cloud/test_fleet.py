"""The fleet brings recorded instances up: every launch fault, and nothing left billing or launched twice."""

from __future__ import annotations

from typing import Any

import pytest

from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.fleet import FleetFailedError, FleetProvider, member_digest
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from tests.providers.lambda_cloud.conftest import fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator

LAUNCH = "POST /instance-operations/launch"


def tagged(emulator: LambdaEmulator, key: str) -> list[str]:
    return [i.id for i in emulator.live() if any(t["key"] == LAUNCH_KEY_TAG and t["value"] == key for t in i.tags)]


def bring_up(*members: dict[str, Any]) -> dict[str, Any]:
    outs = FleetProvider().create(fleet_props(list(members))).outs
    assert outs is not None
    instances: dict[str, Any] = outs["instances"]
    return instances


def test_missing_members_are_launched_and_awaited(emulator: LambdaEmulator) -> None:
    first, second = instance_props("pool-0", user_data="#cloud-config\n"), instance_props("pool-1")
    instances = bring_up(first, second)
    for props in (first, second):
        live = instances[props["launch_key"]]
        assert live["status"] == "active"
        assert live["region"] == "us-west-1"
        assert live["ip"]
        assert live["pool"] == "dev"
        assert tagged(emulator, props["launch_key"]) == [live["instance_id"]]
    instance = emulator.instances[instances[first["launch_key"]]["instance_id"]]
    assert {t["key"]: t["value"] for t in instance.tags}["pool"] == "dev"
    assert emulator.answers[(LAUNCH, 200, "")] == 2


def test_members_that_exist_are_adopted_not_launched_again(emulator: LambdaEmulator) -> None:
    props = instance_props()
    bring_up(props)
    bring_up(props)
    assert emulator.launches_accepted == 1


def test_capacity_fails_over_in_order(emulator: LambdaEmulator) -> None:
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    emulator.capacity[("us-west-2", "gpu_1x_a10")] = 0
    props = instance_props(fallback_regions=["us-west-2", "us-east-1", "us-south-1"])
    assert bring_up(props)[props["launch_key"]]["region"] == "us-east-1"
    assert len(emulator.live()) == 1


def test_rulesets_decide_the_candidate_regions(emulator: LambdaEmulator) -> None:
    """Regions come with their ruleset ids: a region without one of ours is never launched in."""
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    west = emulator.create_ruleset({"name": "w", "region": "us-west-1", "rules": []})[1]["data"]
    east = emulator.create_ruleset({"name": "e", "region": "us-east-1", "rules": []})[1]["data"]
    props = instance_props(fallback_regions=["us-west-2", "us-east-1"])  # us-west-2 has capacity, no ruleset
    props["firewall_rulesets"] = {"us-west-1": [west["id"]], "us-east-1": [east["id"]]}
    live = bring_up(props)[props["launch_key"]]
    assert live["region"] == "us-east-1"
    assert emulator.instances[live["instance_id"]].firewall_ruleset_ids == [east["id"]]


def test_no_capacity_anywhere_launches_nothing_and_names_the_member(emulator: LambdaEmulator) -> None:
    for region in ("us-west-1", "us-west-2"):
        emulator.capacity[(region, "gpu_1x_a10")] = 0
    healthy = instance_props("other", instance_type="gpu_1x_a100")
    with pytest.raises(FleetFailedError, match=r"pool-0: .*no capacity for gpu_1x_a10 in us-west-1, us-west-2"):
        bring_up(instance_props(fallback_regions=["us-west-2"]), healthy)
    # The other member is launched all the same, and the next up only has the failed one to do.
    assert [i.name for i in emulator.live()] == ["other"]


@pytest.mark.parametrize("status", [500, 503])
def test_error_after_an_accepted_launch_adopts_instead_of_relaunching(emulator: LambdaEmulator, status: int) -> None:
    emulator.faults.lost_answers.append(("POST", "/instance-operations/launch", status, "global/internal-error"))
    props = instance_props()
    bring_up(props)
    assert emulator.launches_accepted == 1
    assert len(tagged(emulator, props["launch_key"])) == 1


def test_dropped_connection_after_launch_adopts(emulator: LambdaEmulator) -> None:
    emulator.faults.lost_answers.append(("POST", "/instance-operations/launch", None, ""))
    props = instance_props()
    bring_up(props)
    assert emulator.launches_accepted == 1


def test_error_before_launch_launches_again(emulator: LambdaEmulator) -> None:
    emulator.faults.errors.append(("POST", "/instance-operations/launch", 502, "global/internal-error", 1))
    bring_up(instance_props())
    assert emulator.launches_accepted == 1
    assert emulator.answers[(LAUNCH, 502, "global/internal-error")] == 1


@pytest.mark.parametrize("fate", ["unhealthy", "preempted"])
def test_a_failed_boot_is_terminated_and_reported(emulator: LambdaEmulator, fate: str) -> None:
    emulator.faults.fates.append(fate)
    with pytest.raises(FleetFailedError, match=rf"became {fate} while booting \(terminated\)"):
        bring_up(instance_props())
    assert emulator.launches_accepted == 1
    assert emulator.live() == []
    bring_up(instance_props(launch_key="relaunched-key-0000000000"))  # the next up launches a new one


def test_a_boot_that_never_ends_is_terminated_and_reported(
    emulator: LambdaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.boot_s = {1: 10_000.0}
    monkeypatch.setattr("providers.lambda_cloud.launcher.WAIT_TIMEOUT_S", {1: 60.0})
    with pytest.raises(FleetFailedError, match="not active after"):
        bring_up(instance_props())
    assert emulator.live() == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("global/quota-exceeded", 400),
        ("global/invalid-parameters", 400),
        ("global/account-inactive", 403),
        ("global/invalid-address", 403),
        ("instance-operations/launch/file-system-in-wrong-region", 400),
    ],
)
def test_fail_fast_codes_are_not_retried(emulator: LambdaEmulator, code: str, status: int) -> None:
    emulator.faults.errors.append(("POST", "/instance-operations/launch", status, code, 5))
    with pytest.raises(FleetFailedError, match=code):
        bring_up(instance_props())
    # One answer with that code: whatever else the pacing cost (a 429 on a busy machine), no retry.
    assert emulator.answers[(LAUNCH, status, code)] == 1
    assert emulator.live() == []


def test_an_account_error_stops_the_launches(emulator: LambdaEmulator) -> None:
    emulator.faults.errors.append(("POST", "/instance-operations/launch", 400, "global/quota-exceeded", 1))
    with pytest.raises(FleetFailedError, match="pool-1: not launched after global/quota-exceeded"):
        bring_up(instance_props("pool-0"), instance_props("pool-1"))
    assert emulator.answers[(LAUNCH, 400, "global/quota-exceeded")] == 1
    assert emulator.launches_accepted == 0


def test_an_invalid_key_fails_fast_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, emulator: LambdaEmulator
) -> None:
    monkeypatch.setenv("LAMBDA_API_KEY", "wrong-key")
    with pytest.raises(LambdaApiError) as caught:
        bring_up(instance_props())
    assert caught.value.code == "global/invalid-api-key"
    assert "wrong-key" not in str(caught.value)


def test_diff_compares_members_and_never_replaces() -> None:
    provider = FleetProvider()
    props = fleet_props([instance_props("pool-0", launch_key="k" * 24)])
    outs = {"members_digest": member_digest(props["members"]), "instances": {}}
    assert provider.diff("fleet", outs, props).changes is False
    more = fleet_props([instance_props("pool-0", launch_key="k" * 24), instance_props("pool-1")])
    diff = provider.diff("fleet", outs, more)
    assert (diff.changes, diff.replaces) == (True, [])


def test_check_names_the_member_and_property() -> None:
    props = fleet_props([instance_props("pool-0"), instance_props("pool-1", ssh_key_names=[])])
    failures = FleetProvider().check({}, props).failures
    assert [f.property for f in failures] == ["members[1].ssh_key_names"]
    twice = fleet_props([instance_props("a", launch_key="k" * 24), instance_props("b", launch_key="k" * 24)])
    assert [f.property for f in FleetProvider().check({}, twice).failures] == ["members"]
