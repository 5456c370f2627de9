"""The burst sweep through the real provider host: creating it touches nothing; deleting it terminates
every instance the node-group service launched for this stack, waits until none bills, and leaves
Pulumi's own instances and other stacks' alone. It is never replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from providers.lambda_cloud.resources import restore_pickler
from providers.lambda_cloud.sweep import BurstSweepProvider
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tests.providers.lambda_cloud.host import HostError, ProviderHost
from tools.harness import read_stack_file

SCALE = 0.01
URN = "urn:pulumi:prod::sophia::sophia:compute:ClusterAutoscaler$pulumi-python:dynamic/lambda:BurstSweep::sweep"
SSH_KEY = "sophia-test-key"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", str(SCALE))  # the test's own launches are paced at scale too
    with LambdaEmulator(time_scale=SCALE, boot_s={1: 30.0, 8: 60.0}) as emu:
        emu.add_ssh_key(SSH_KEY)
        yield emu
        assert emu.violations == []


def launch(emulator: LambdaEmulator, name: str, tags: dict[str, str]) -> str:
    client = LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url)
    return client.launch_instance(
        {
            "region_name": "us-west-1",
            "instance_type_name": "gpu_1x_a10",
            "ssh_key_names": [SSH_KEY],
            "name": name,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
    )


@contextmanager
def host(emulator: LambdaEmulator) -> Iterator[ProviderHost]:
    """A provider host configured as the engine configures it for a `pulumi` command."""
    with ProviderHost(env={"LAMBDA_API_TIME_SCALE": str(SCALE)}) as started:
        config, secret_keys = read_stack_file("prod")
        config.update({"sophia:lambdaApiKey": emulator.api_key, "sophia:lambdaApiUrl": emulator.base_url})
        started.configure(config, {*secret_keys, "sophia:lambdaApiKey"})
        yield started


def props(owner: str = "sophia-prod") -> dict[str, Any]:
    provider = serialize_provider(BurstSweepProvider())
    restore_pickler()
    return {"__provider": provider, "owner_tag": "sophia-autoscaler", "owner": owner}


def test_deleting_the_sweep_terminates_only_this_stacks_burst_and_waits_for_it(emulator: LambdaEmulator) -> None:
    burst = [
        launch(emulator, f"sophia-prod-ai-core-as-{i}", {"sophia-autoscaler": "sophia-prod", "pool": "ai-core"})
        for i in range(2)
    ]
    floor = launch(emulator, "sophia-prod-ai-core-0", {"pool": "ai-core", LAUNCH_KEY_TAG: "a" * 24})
    other_stack = launch(emulator, "sophia-dev-dev-as-0", {"sophia-autoscaler": "sophia-dev", "pool": "dev"})
    with host(emulator) as provider:
        sweep_id, outputs = provider.create(URN, props())
        assert {i.id for i in emulator.live()} == {*burst, floor, other_stack}  # creating it touches nothing
        # Never a replacement: that would delete the old sweep and terminate a running stack's burst.
        diff = provider.diff(sweep_id, URN, outputs, props(owner="sophia-prod2"), outputs)
        assert (diff.changes, diff.replaces) == (True, [])
        # A dying service's launch that lands after the sweep's first listing is caught as well.
        late: list[str] = []
        first_terminate = threading.Event()

        def launch_late() -> None:
            first_terminate.wait(timeout=60)
            late.append(launch(emulator, "sophia-prod-ai-core-as-late", {"sophia-autoscaler": "sophia-prod"}))

        thread = threading.Thread(target=launch_late, daemon=True)
        thread.start()
        watcher = threading.Thread(
            target=lambda: _when(lambda: emulator.calls["POST /instance-operations/terminate"] > 0, first_terminate),
            daemon=True,
        )
        watcher.start()
        provider.delete(sweep_id, URN, outputs, props())
        thread.join(timeout=60)
    live = {i.id for i in emulator.live()}
    assert live == {floor, other_stack}
    assert len(late) == 1
    assert late[0] not in live  # launched during the sweep, terminated by it
    for instance_id in [*burst, *late]:
        assert emulator.status_of(emulator.instances[instance_id]) in ("terminating", None)


def test_a_sweep_that_cannot_terminate_says_so(emulator: LambdaEmulator) -> None:
    launch(emulator, "sophia-prod-ai-core-as-0", {"sophia-autoscaler": "sophia-prod"})
    emulator.faults.errors.append(("POST", "/instance-operations/terminate", 403, "global/account-inactive", 10**6))
    with host(emulator) as provider:
        sweep_id, outputs = provider.create(URN, props())
        with pytest.raises(HostError, match="account-inactive"):
            provider.delete(sweep_id, URN, outputs, props())
    assert len(emulator.live()) == 1


def _when(condition: Any, event: threading.Event) -> None:
    while not condition():
        event.wait(0.005)
    event.set()
