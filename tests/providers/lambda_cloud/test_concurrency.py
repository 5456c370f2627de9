"""Twenty instances brought up by one fleet under injected faults, and the host-level guarantees."""

from __future__ import annotations

from collections import Counter

from providers.lambda_cloud.fleet import FleetFailedError, FleetProvider
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from tests.providers.lambda_cloud.conftest import fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator


def launch_keys(emulator: LambdaEmulator) -> Counter[str]:
    return Counter(t["value"] for i in emulator.live() for t in i.tags if t["key"] == LAUNCH_KEY_TAG)


def test_twenty_members_with_transient_faults(emulator: LambdaEmulator) -> None:
    launch = ("POST", "/instance-operations/launch")
    emulator.faults.lost_answers += [(*launch, None, ""), (*launch, None, ""), (*launch, 500, "global/internal-error")]
    emulator.faults.lost_answers.append((*launch, 503, "global/internal-error"))
    emulator.faults.errors.append(("GET", "/instances", 502, "global/internal-error", 2))
    emulator.faults.errors.append(("POST", "/instance-operations/launch", 500, "global/internal-error", 1))
    props = [instance_props(name=f"pool-{i}") for i in range(20)]
    outs = FleetProvider().create(fleet_props(props)).outs
    assert outs is not None
    assert emulator.launches_accepted == 20  # no launch repeated after a lost answer
    assert launch_keys(emulator) == Counter({p["launch_key"]: 1 for p in props})
    assert all(live["status"] == "active" for live in outs["instances"].values())
    # Coalesced polling: the waits share one listing per poll, not one per instance.
    assert emulator.answers[("GET /instances", 200, "")] < 20


def test_failed_boots_leave_nothing_running(emulator: LambdaEmulator) -> None:
    emulator.faults.fates.extend(["active", "unhealthy", "active", "preempted", "active", "unhealthy"])
    emulator.faults.lost_answers.append(("POST", "/instance-operations/launch", None, ""))
    props = [instance_props(name=f"pool-{i}") for i in range(20)]
    try:
        FleetProvider().create(fleet_props(props))
    except FleetFailedError as error:
        assert str(error).startswith("3 of 20 instances are not active")
    else:
        raise AssertionError("three boots failed and the fleet did not say so")
    assert len(emulator.live()) == 17
    assert all(count == 1 for count in launch_keys(emulator).values())
