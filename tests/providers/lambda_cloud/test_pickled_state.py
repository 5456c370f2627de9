"""State written before the layout move still loads: its `__provider` names `components.lambda_cloud`.

The values in `fixtures/pre_move_providers.json` were serialized by the SDK's `serialize_provider`
when the providers lived in `components/lambda_cloud/`. The provider host decodes them exactly as
below (`pulumi/dynamic/__main__.py`: base64, then `dill.loads`) for every refresh and destroy.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import dill
import pytest

from providers.lambda_cloud import account_providers, provider
from providers.lambda_cloud.base import LambdaProvider
from providers.lambda_cloud.fleet import FleetProvider
from tests.providers.lambda_cloud.conftest import SSH_KEY, fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator

FIXTURE = Path(__file__).parent / "fixtures" / "pre_move_providers.json"
PRE_MOVE: dict[str, str] = json.loads(FIXTURE.read_text())["providers"]


def unpickle(name: str) -> Any:
    return dill.loads(base64.b64decode(PRE_MOVE[name]))


def test_the_fixture_names_the_old_module_path() -> None:
    # Guards the fixture itself: re-serializing with today's layout would prove nothing.
    for name, value in PRE_MOVE.items():
        assert b"components.lambda_cloud." in base64.b64decode(value), name


@pytest.mark.parametrize(
    ("name", "current"),
    [
        ("InstanceProvider", provider.InstanceProvider),
        ("SshKeyProvider", account_providers.SshKeyProvider),
        ("FirewallRulesetProvider", account_providers.FirewallRulesetProvider),
        ("FilesystemProvider", account_providers.FilesystemProvider),
    ],
)
def test_a_pre_move_provider_loads_as_todays_class(name: str, current: type[LambdaProvider]) -> None:
    loaded = unpickle(name)
    assert type(loaded) is current


def test_a_pre_move_instance_provider_reads_and_terminates(emulator: LambdaEmulator) -> None:
    props = instance_props("pre-move-0")
    launched = FleetProvider().create(fleet_props([props])).outs
    assert launched is not None
    instance_id = launched["instances"][props["launch_key"]]["instance_id"]
    loaded = unpickle("InstanceProvider")
    read = loaded.read(instance_id, props)  # state from before the move holds the instance's real id
    assert read.id == instance_id
    assert read.outs["name"] == "pre-move-0"
    loaded.delete(instance_id, read.outs)
    assert emulator.live() == []


def test_a_pre_move_account_provider_creates_and_deletes(emulator: LambdaEmulator) -> None:
    loaded = unpickle("SshKeyProvider")
    props = {"name": "pre-move-key", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3x ops@sophia"}
    created = loaded.create(props)
    assert loaded.read(created.id, {}).id == created.id
    loaded.delete(created.id, {})
    assert loaded.read(created.id, {}).id is None
    assert SSH_KEY in {key["name"] for key in emulator.ssh_keys.values()}
