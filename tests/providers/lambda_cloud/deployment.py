"""A stack's Lambda resources deployed through the real provider host against the emulator.

Each operation starts its own provider host, as each `pulumi` command does, configured with the
stack's whole config; the engine's snapshot carries over between operations.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tests.providers.lambda_cloud.engine import Desired, Engine, desired_resources
from tests.providers.lambda_cloud.host import ProviderHost
from tools.harness import read_stack_file

INSTANCE = "pulumi-python:dynamic/lambda:Instance"
RULESET = "pulumi-python:dynamic/lambda:FirewallRuleset"
SSH_KEY = "pulumi-python:dynamic/lambda:SshKey"
FLEET = "pulumi-python:dynamic/lambda:Fleet"


def pools_config(sizes: Mapping[str, int], **extra: Any) -> str:
    """`sophia:gpuPools` for prod's four pools at the given desired sizes (max at least that)."""
    document: list[dict[str, Any]] = json.loads(read_stack_file("prod")[0]["sophia:gpuPools"])
    pools = []
    for pool in document:
        if pool["name"] not in sizes:
            continue
        desired = sizes[pool["name"]]
        pools.append({**pool, "min": min(pool["min"], desired), "desired": desired, "max": max(pool["max"], desired)})
        pools[-1].update(extra.get(pool["name"], {}))
    return json.dumps(pools)


class Deployment:
    """The prod program's Lambda resources, an engine snapshot, and the emulator they live in."""

    def __init__(self, emulator: LambdaEmulator, scale: float, overrides: Mapping[str, str | None]) -> None:
        self.emulator = emulator
        self.scale = scale
        # Pulumi's own lifecycle of every pool instance: `desired` of them, no cluster-autoscaler, and
        # no service fleet (its services name pools these tests leave out).
        self.overrides: dict[str, str | None] = {
            "sophia:autoscaler": None,
            "sophia:services": None,
            "sophia:fleet": None,
            **overrides,
        }
        self.engine: Engine | None = None
        self.hosts_started = 0

    def desired(self, **overrides: str | None) -> list[Desired]:
        self.overrides.update(overrides)
        resources, _ = desired_resources("prod", self.overrides)
        return resources

    @contextmanager
    def host(self) -> Iterator[Engine]:
        """A fresh provider host for one operation, configured as the engine configures it."""
        config, secret_keys = read_stack_file("prod")
        config.update({k: v for k, v in self.overrides.items() if v is not None})
        config["sophia:lambdaApiKey"] = self.emulator.api_key
        config["sophia:lambdaApiUrl"] = self.emulator.base_url
        with ProviderHost(env={"LAMBDA_API_TIME_SCALE": str(self.scale)}) as host:
            self.hosts_started += 1
            host.configure(config, {*secret_keys, "sophia:lambdaApiKey"})
            if self.engine is None:
                self.engine = Engine(host)
            else:
                self.engine.host = host
            yield self.engine

    def preview(self, desired: list[Desired]) -> dict[str, str]:
        with self.host() as engine:
            return engine.preview(desired)

    def up(self, desired: list[Desired]) -> dict[str, str]:
        with self.host() as engine:
            return engine.up(desired)

    def refresh(self) -> dict[str, str]:
        with self.host() as engine:
            return engine.refresh()

    def destroy(self) -> None:
        with self.host() as engine:
            engine.destroy()

    # -- what the snapshot and the API hold -----------------------------------------------

    def recorded(self, type_: str) -> dict[str, dict[str, Any]]:
        assert self.engine is not None
        return {u: r.outputs for u, r in self.engine.state.items() if f"${type_}::" in u}

    def live_by_key(self) -> Counter[str]:
        return Counter(t["value"] for i in self.emulator.live() for t in i.tags if t["key"] == LAUNCH_KEY_TAG)

    def instance_ids(self) -> dict[str, str]:
        """Launch key -> the live instance's id."""
        return {t["value"]: i.id for i in self.emulator.live() for t in i.tags if t["key"] == LAUNCH_KEY_TAG}

    def assert_matches_api(self) -> None:
        """Every recorded instance, ruleset and key exists exactly once; nothing else is live."""
        keys = {o["launch_key"] for o in self.recorded(INSTANCE).values()}
        live = self.live_by_key()
        assert set(live) == keys, f"recorded {sorted(keys)}, live {sorted(live)}"
        assert all(count == 1 for count in live.values()), f"duplicated instances: {live}"
        assert all(self.emulator.status_of(i) == "active" for i in self.emulator.live())
        assert {o["ruleset_id"] for o in self.recorded(RULESET).values()} == set(self.emulator.rulesets)
        assert {o["key_id"] for o in self.recorded(SSH_KEY).values()} == set(self.emulator.ssh_keys)
        assert self.emulator.violations == []

    def assert_empty(self) -> None:
        assert self.emulator.live() == []
        assert self.emulator.rulesets == {}
        assert self.emulator.ssh_keys == {}
        assert self.engine is not None
        assert self.engine.state == {}
        assert self.emulator.violations == []


def operations(plan: Mapping[str, str], type_: str) -> Counter[str]:
    return Counter(op for urn, op in plan.items() if f"${type_}::" in urn)
