from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.provider import InstanceProvider
from tests.providers.lambda_cloud.emulator import LambdaEmulator

# 1 API second = 10 ms: a 12 s launch slot is 0.12 s; boots are shortened below.
TEST_SCALE = 0.01
SSH_KEY = "sophia-test-key"


@pytest.fixture
def scale(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", str(TEST_SCALE))
    return TEST_SCALE


@pytest.fixture
def emulator(scale: float, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    with LambdaEmulator(time_scale=scale, boot_s={1: 30.0, 8: 60.0}) as emu:
        emu.add_ssh_key(SSH_KEY)
        monkeypatch.setenv("LAMBDA_API_KEY", emu.api_key)
        monkeypatch.setenv("LAMBDA_API_URL", emu.base_url)
        yield emu
        assert emu.violations == [], "emulator saw requests or sent responses outside the OpenAPI document"


@pytest.fixture
def client(emulator: LambdaEmulator) -> LambdaCloudClient:
    return LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url)


@pytest.fixture
def provider(emulator: LambdaEmulator) -> InstanceProvider:
    return InstanceProvider()


def instance_props(name: str = "pool-0", **changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": name,
        "instance_type": "gpu_1x_a10",
        "region": "us-west-1",
        "fallback_regions": [],
        "ssh_key_names": [SSH_KEY],
        "file_system_names": [],
        "image": None,
        "user_data": None,
        "tags": {"pool": "dev", "cost-centre": "cc-1"},
        "firewall_ruleset_ids": [],
        "launch_key": uuid.uuid4().hex[:24],
    }
    props.update(changes)
    return props


def fleet_props(members: list[dict[str, Any]]) -> dict[str, Any]:
    """`LambdaFleet` inputs for recorded instances (rulesets by region, as `GpuPool` passes them)."""
    return {
        "members": [
            {
                **{k: v for k, v in m.items() if k != "firewall_ruleset_ids"},
                "firewall_rulesets": m.get("firewall_rulesets", {}),
                "pool": m.get("tags", {}).get("pool", "dev"),
            }
            for m in members
        ]
    }
