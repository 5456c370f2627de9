"""The test of record for the Lambda resources: the prod program's dynamic resources, played through
the SDK's real provider host over gRPC (one host per `pulumi` command, as the CLI runs them) against
the emulator, through a stack's life. Every step ends with the snapshot matching the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from providers.lambda_cloud.account_providers import SshKeyProvider
from providers.lambda_cloud.resources import restore_pickler
from tests.helpers import decoded, stack_config
from tests.providers.lambda_cloud.deployment import (
    FLEET,
    INSTANCE,
    RULESET,
    SSH_KEY,
    Deployment,
    operations,
    pools_config,
)
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tests.providers.lambda_cloud.engine import DeploymentError
from tests.providers.lambda_cloud.host import ProviderHost
from tools.harness import read_stack_file

SCALE = 0.01
BOOT_S = {1: 30.0, 8: 60.0}
ACCESS = decoded(stack_config(), "sophia:lambdaAccess")
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedKeyRotatedKeyRotatedKey ops@sophia"


@pytest.fixture
def emulator() -> Iterator[LambdaEmulator]:
    with LambdaEmulator(time_scale=SCALE, boot_s=BOOT_S) as emu:
        yield emu


def deployed(emulator: LambdaEmulator, sizes: dict[str, int]) -> Deployment:
    deployment = Deployment(emulator, SCALE, {"sophia:gpuPools": pools_config(sizes)})
    deployment.up(deployment.desired())
    deployment.assert_matches_api()
    return deployment


def test_a_stack_lifecycle_through_the_provider_host(emulator: LambdaEmulator) -> None:
    deployment = Deployment(emulator, SCALE, {"sophia:gpuPools": pools_config({"ai-core": 2, "dev": 1})})
    desired = deployment.desired()

    # A first preview: the rulesets' ids are unknown to the instances and the fleet, and Check lets them through.
    plan = deployment.preview(desired)
    assert set(plan.values()) == {"create"}
    assert len(plan) == 6 + 2 + 3 + 1  # rulesets (2 pools x 3 regions), keys, instances, fleet

    deployment.up(desired)
    deployment.assert_matches_api()
    assert set(deployment.preview(desired).values()) == {"same"}
    ids = deployment.instance_ids()

    # A rename reaches the API in place.
    renamed = [
        replace(d, inputs={**d.inputs, "name": d.inputs["name"] + "-r"}) if d.type == INSTANCE else d for d in desired
    ]
    assert operations(deployment.up(renamed), INSTANCE) == {"update": 3}
    assert sorted(i.name for i in emulator.live()) == sorted(
        f"{d.inputs['name']}-r" for d in desired if d.type == INSTANCE
    )
    assert deployment.instance_ids() == ids

    # Scale up, then down: one instance more, then the highest index goes.
    plan = deployment.up(deployment.desired(**{"sophia:gpuPools": pools_config({"ai-core": 3, "dev": 1})}))
    assert operations(plan, INSTANCE)["create"] == 1
    assert operations(plan, FLEET) == {"update": 1}
    deployment.assert_matches_api()
    plan = deployment.up(deployment.desired(**{"sophia:gpuPools": pools_config({"ai-core": 2, "dev": 1})}))
    assert operations(plan, INSTANCE)["delete"] == 1
    assert next(u for u, op in plan.items() if op == "delete").endswith("::ai-core-2")
    deployment.assert_matches_api()
    assert set(deployment.instance_ids().values()) == set(ids.values())

    # Out-of-band changes, found by a refresh and put right by the next up.
    victim = next(i for i in emulator.live() if i.name == "sophia-prod-ai-core-1")
    console_renamed = next(i for i in emulator.live() if i.name == "sophia-prod-ai-core-0")
    console_renamed.name = "renamed-in-the-console"
    victim.terminating_at = 0.0  # terminated in the console, long ago
    unused = next(
        r for r in emulator.rulesets.values() if r["name"] == "sophia-prod-dev-us-east-1"
    )  # no instance runs there
    del emulator.rulesets[unused["id"]]
    refreshed = deployment.refresh()
    assert sorted(u.rsplit("::", 1)[-1] for u, outcome in refreshed.items() if outcome == "gone") == [
        "ai-core-1",
        "dev-firewall-us-east-1",
    ]
    plan = deployment.up(deployment.desired())
    assert operations(plan, INSTANCE) == {"create": 1, "update": 2}
    assert "renamed-in-the-console" not in {i.name for i in emulator.live()}
    assert operations(plan, RULESET)["create"] == 1
    assert "replace" not in plan.values()
    deployment.assert_matches_api()
    assert len(emulator.live()) == 3

    deployment.destroy()
    deployment.assert_empty()


@pytest.mark.parametrize(
    ("change", "overrides"),
    [
        ("cost tag", {"sophia:tags": json.dumps({"owner": "platform-infra", "costCentre": "sophia-ai-gpu"})}),
        (
            "off-hours schedule",
            {
                "sophia:gpuPools": pools_config(
                    {"ai-core": 1},
                    **{"ai-core": {"offHours": {"timezone": "UTC", "stopAt": "20:00", "startAt": "07:00"}}},
                )
            },
        ),
        ("fallback regions", {"sophia:lambdaFallbackRegions": json.dumps(["us-west-2"])}),
        ("SSH key rotation", {"sophia:lambdaAccess": json.dumps({**ACCESS, "sshPublicKey": OTHER_KEY})}),
    ],
)
def test_a_change_a_running_instance_does_not_need_keeps_it(
    emulator: LambdaEmulator, change: str, overrides: dict[str, str]
) -> None:
    deployment = deployed(emulator, {"ai-core": 1})
    before = deployment.instance_ids()
    desired = deployment.desired(**overrides)
    plan = deployment.preview(desired)
    assert operations(plan, INSTANCE).keys() <= {"update", "same"}, change
    deployment.up(desired)
    deployment.assert_matches_api()
    assert deployment.instance_ids() == before, f"{change} replaced a running instance"
    assert emulator.launches_accepted == 1
    assert set(deployment.preview(desired).values()) == {"same"}
    if change == "SSH key rotation":
        assert [k["public_key"] for k in emulator.ssh_keys.values()] == [OTHER_KEY]
    deployment.destroy()
    deployment.assert_empty()


def test_a_rulesets_of_another_region_changing_keeps_the_instance(emulator: LambdaEmulator) -> None:
    deployment = deployed(emulator, {"ai-core": 1})
    before = deployment.instance_ids()
    other = next(r for r in emulator.rulesets.values() if r["region"]["name"] == "us-east-1")
    del emulator.rulesets[other["id"]]  # not in use: the instance runs in us-west-1
    deployment.refresh()
    plan = deployment.up(deployment.desired())
    assert operations(plan, RULESET)["create"] == 1
    assert operations(plan, INSTANCE) == {"update": 1}
    assert deployment.instance_ids() == before
    deployment.assert_matches_api()


def test_an_instance_type_change_replaces_deleting_first(emulator: LambdaEmulator) -> None:
    deployment = deployed(emulator, {"dev": 1})
    (old_id,) = deployment.instance_ids().values()
    pools = pools_config({"dev": 1}, dev={"instanceType": "gpu_1x_a100"})
    plan = deployment.up(deployment.desired(**{"sophia:gpuPools": pools}))
    assert operations(plan, INSTANCE) == {"replace": 1}
    steps = [op for op, urn in deployment.engine.steps if urn.endswith("::dev-0")] if deployment.engine else []
    assert steps[-2:] == ["delete", "create"]
    deployment.assert_matches_api()
    (new_id,) = deployment.instance_ids().values()
    assert new_id != old_id
    assert emulator.instances[new_id].type_name == "gpu_1x_a100"
    assert emulator.status_of(emulator.instances[old_id]) in ("terminating", None)


def test_removing_a_pool_waits_for_its_rulesets_to_be_free(emulator: LambdaEmulator) -> None:
    deployment = deployed(emulator, {"ai-core": 1, "dev": 1})
    plan = deployment.up(deployment.desired(**{"sophia:gpuPools": pools_config({"ai-core": 1})}))
    assert operations(plan, RULESET)["delete"] == 3
    assert operations(plan, SSH_KEY)["delete"] == 1
    # The engine deleted the instance, then its rulesets at once: the one of its region was still
    # held by the terminating instance, and its delete waited instead of failing.
    in_use = ("DELETE /firewall-rulesets/{id}", 400, "firewall-rulesets/firewall-ruleset-in-use")
    assert emulator.answers[in_use] >= 1
    deployment.assert_matches_api()
    assert len(emulator.live()) == 1


def test_a_ruleset_held_by_a_running_instance_fails_naming_it(emulator: LambdaEmulator) -> None:
    emulator.capacity[("us-west-1", "gpu_1x_gh200")] = 0  # the instance lands in the first fallback
    deployment = deployed(emulator, {"ai-core": 1})
    (instance_id,) = deployment.instance_ids().values()
    assert emulator.instances[instance_id].region == "us-west-2"
    # Dropping that fallback region drops its ruleset, which the running instance holds: the delete
    # fails at once naming the instance rather than waiting for a termination nobody asked for.
    with pytest.raises(DeploymentError, match=instance_id):
        deployment.up(deployment.desired(**{"sophia:lambdaFallbackRegions": json.dumps(["us-east-1"])}))
    assert deployment.instance_ids() == {k: instance_id for k in deployment.instance_ids()}


@pytest.mark.parametrize("source", ["stack config", "environment"])
def test_the_api_key_reaches_the_provider_host_from_either_source(emulator: LambdaEmulator, source: str) -> None:
    """Stack config reaches a dynamic provider's `configure` from Pulumi 3.139.0 on; LAMBDA_API_KEY
    in the environment of `pulumi` works with any version (the host inherits it)."""
    config, secret_keys = read_stack_file("prod")
    env = {"LAMBDA_API_TIME_SCALE": str(SCALE)}
    if source == "stack config":
        config.update({"sophia:lambdaApiKey": emulator.api_key, "sophia:lambdaApiUrl": emulator.base_url})
    else:
        env.update({"LAMBDA_API_KEY": emulator.api_key, "LAMBDA_API_URL": emulator.base_url})
        config.pop("sophia:lambdaApiKey", None)
    props = {
        "__provider": serialize_provider(SshKeyProvider()),
        "name": "sophia-key-source",
        "public_key": OTHER_KEY,
    }
    restore_pickler()
    with ProviderHost(env=env) as host:
        host.configure(config, {*secret_keys, "sophia:lambdaApiKey"} & set(config))
        key_id, outputs = host.create("urn:pulumi:prod::sophia::pulumi-python:dynamic/lambda:SshKey::k", props)
    assert outputs["key_id"] == key_id
    assert [k["name"] for k in emulator.ssh_keys.values()] == ["sophia-key-source"]
