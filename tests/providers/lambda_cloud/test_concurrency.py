"""Twenty creates at once, in one provider process, under the documented limits and injected faults."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from providers.lambda_cloud.provider import InstanceProvider
from tests.providers.lambda_cloud.conftest import instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator


def create_all(count: int) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, BaseException]]:
    """Each thread gets its own unpickled provider, as the engine's parallel creates do."""
    props = [instance_props(name=f"pool-{i}") for i in range(count)]
    created: dict[str, str] = {}
    failed: dict[str, BaseException] = {}
    lock = threading.Lock()

    def create(p: dict[str, Any]) -> None:
        try:
            result = InstanceProvider().create(p)
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            with lock:
                failed[p["launch_key"]] = error
        else:
            with lock:
                created[p["launch_key"]] = result.id

    threads = [threading.Thread(target=create, args=(p,)) for p in props]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return props, created, failed


def launch_keys(emulator: LambdaEmulator) -> Counter[str]:
    return Counter(t["value"] for i in emulator.live() for t in i.tags if t["key"] == LAUNCH_KEY_TAG)


def test_twenty_parallel_creates_with_transient_faults(emulator: LambdaEmulator) -> None:
    emulator.faults.launch_then_drop = 2
    emulator.faults.launch_then_error.extend([(500, "global/internal-error"), (503, "provider/internal-unavailable")])
    emulator.faults.errors.append(("GET", "/instances", 502, "provider/internal-unavailable", 2))
    emulator.faults.errors.append(("POST", "/instance-operations/launch", 500, "global/internal-error", 1))
    props, created, failed = create_all(20)
    assert failed == {}
    assert len(created) == 20
    assert len(set(created.values())) == 20
    assert emulator.launches_accepted == 20  # no launch repeated after a lost answer
    keys = launch_keys(emulator)
    assert keys == Counter({p["launch_key"]: 1 for p in props})
    assert all(emulator.status_of(emulator.instances[i]) == "active" for i in created.values())
    # coalesced polling: far fewer listings than one per instance per poll
    assert emulator.calls["GET /instances"] < 20 * 3


def test_failed_boots_leave_nothing_running(emulator: LambdaEmulator) -> None:
    emulator.faults.fates.extend(["active", "unhealthy", "active", "preempted", "active", "unhealthy"])
    emulator.faults.launch_then_drop = 1
    _, created, failed = create_all(20)
    assert len(failed) == 3
    assert all("became" in str(e) for e in failed.values())
    assert len(created) == 17
    live_ids = {i.id for i in emulator.live()}
    assert live_ids == set(created.values())
    assert set(launch_keys(emulator)) == set(created)
