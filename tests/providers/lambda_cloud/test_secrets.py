"""The API key reaches neither the pickled provider nor outputs, and the pickle loads as the provider host loads it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import dill
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider

from providers.lambda_cloud.account_providers import FirewallRulesetProvider, SshKeyProvider
from providers.lambda_cloud.fleet import FleetProvider
from providers.lambda_cloud.provider import InstanceProvider
from tests.providers.lambda_cloud.conftest import fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tools.harness import PROJECT_ROOT

KEY = "secret-lambda-key-4d1f0a9b"


def configured(provider: InstanceProvider) -> InstanceProvider:
    provider.configure(ConfigureRequest(Config({"sophia:lambdaApiKey": KEY}, "sophia")))
    return provider


def test_pickled_provider_holds_no_key_even_after_configure() -> None:
    provider = configured(InstanceProvider())
    assert provider.endpoint().api_key.header() == f"Bearer {KEY}"
    pickled = serialize_provider(provider)
    raw = base64.b64decode(pickled)
    assert KEY.encode() not in raw
    restored = dill.loads(raw)
    assert type(restored) is InstanceProvider
    assert restored._config_key is None


def test_pickle_loads_in_a_fresh_process_in_the_project_root() -> None:
    for provider in (InstanceProvider(), FleetProvider(), SshKeyProvider(), FirewallRulesetProvider()):
        pickled = serialize_provider(provider)
        script = (
            "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
            "print(type(p).__module__, type(p).__name__)"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], input=pickled, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
        assert result.stdout.split() == [type(provider).__module__, type(provider).__name__]


def test_outputs_hold_no_key_and_no_user_data(emulator: LambdaEmulator) -> None:
    config = ConfigureRequest(Config({"sophia:lambdaApiKey": emulator.api_key}, "sophia"))
    instance, fleet = InstanceProvider(), FleetProvider()
    instance.configure(config)
    fleet.configure(config)
    props = instance_props(user_data="#cloud-config\ntoken: join-secret\n")
    outputs = [instance.create(props).outs, fleet.create(fleet_props([props])).outs]
    outputs.append(instance.read(props["launch_key"], outputs[0] or {}).outs)
    text = json.dumps(outputs)
    assert emulator.api_key not in text
    assert "join-secret" not in text  # user data is kept as a digest only
