"""`FleetProvider`: launches the recorded instances that are missing, then waits until all are active.

Why a fleet resource: the CLI runs every dynamic resource of a stack through one provider host
with four worker threads. If each instance's Create launched and waited for its boot, four boots
(or four waits for a launch slot, one per 12 s) would hold all four threads, and everything else
dynamic (a Check, a ruleset update) would queue behind them. Instead each `LambdaInstance` is
recorded at once (its id is its launch key, which tags its instance) and one `LambdaFleet`, which
depends on all of them, launches what is missing one slot at a time and waits for every boot with
one coalesced listing per poll: one thread for the whole bring-up, and three stay free.

It is also what makes `pulumi up` converge: a member whose launch failed, or whose instance died
while booting (it is terminated and reported), is launched again by the next `pulumi up`, because
a failed fleet Create is not recorded and runs again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers.lambda_cloud.base import LambdaProvider, report
from providers.lambda_cloud.checks import Failures, check_instance, has_unknowns, is_unknown
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.launcher import (
    FAILED_STATUSES,
    Launcher,
    LaunchSpec,
    carrying,
    terminate_quietly,
    wait_timeout_s,
)
from providers.lambda_cloud.timing import scaled
from providers.lambda_cloud.watcher import InstanceWatcher

PROGRESS_EVERY_S = 60.0
# Errors about the account, not one instance: launching the next member would fail the same way.
ACCOUNT_CODES = frozenset(
    {"global/invalid-api-key", "global/account-inactive", "global/quota-exceeded", "global/invalid-address"}
)


class FleetFailedError(Exception):
    """Some members could not be launched or did not become active; the failed ones are terminated."""


@dataclass
class _Booting:
    spec: LaunchSpec
    instance_id: str
    since: float
    timeout: float


def member_digest(members: Sequence[Mapping[str, Any]]) -> str:
    """What the diff compares: the members as launched, user data by digest only."""
    normalized = [
        {
            **{k: v for k, v in m.items() if k != "user_data"},
            "user_data": hashlib.sha256(m["user_data"].encode()).hexdigest() if m.get("user_data") else None,
        }
        for m in members
    ]
    return hashlib.sha256(json.dumps(normalized, sort_keys=True, default=str).encode()).hexdigest()


def check_member(member: Any) -> Failures:
    if is_unknown(member):
        return []
    if not isinstance(member, Mapping):
        return [("", "must be a map")]
    failures = check_instance({**member, "firewall_ruleset_ids": []})
    if not is_unknown(member.get("launch_key")) and not member.get("launch_key"):
        failures.append(("launch_key", "is required (LambdaInstance derives it from the URN)"))
    rulesets = member.get("firewall_rulesets") or {}
    if not has_unknowns(rulesets) and not (
        isinstance(rulesets, Mapping) and all(isinstance(ids, list) for ids in rulesets.values())
    ):
        failures.append(("firewall_rulesets", "must map each region to a list of ruleset ids"))
    return failures


class Fleet:
    """Brings every member to `active`: adopt, launch what is missing, wait, terminate failures."""

    def __init__(
        self,
        client: LambdaCloudClient,
        watcher: InstanceWatcher,
        *,
        progress: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.watcher = watcher
        self.progress = progress
        self.clock = clock

    def reconcile(self, specs: Sequence[LaunchSpec]) -> dict[str, Mapping[str, Any]]:
        """Every member's live instance, by launch key; raises `FleetFailedError` naming each failure."""
        started = self.clock()
        listing = self.watcher.fresh(started)
        booting: dict[str, _Booting] = {}
        failures: dict[str, str] = {}
        for spec in specs:
            found = carrying(listing, spec.launch_key)
            if found:
                booting[spec.launch_key] = self._booting(spec, str(found[0]["id"]), started)
        missing = [spec for spec in specs if spec.launch_key not in booting]
        if missing:
            self.progress(f"launching {len(missing)} of {len(specs)} instances, one per launch slot")
        for position, spec in enumerate(missing):
            try:
                instance_id = Launcher(self.client, self.watcher, spec, progress=self.progress).launch(listing)
            except LambdaApiError as error:
                failures[spec.launch_key] = f"{spec.name}: {error}"
                if error.code in ACCOUNT_CODES:
                    for skipped in missing[position + 1 :]:
                        failures[skipped.launch_key] = f"{skipped.name}: not launched after {error.code}"
                    break
                continue
            booting[spec.launch_key] = self._booting(spec, instance_id, self.clock())
        active = self._wait(booting, failures)
        if failures:
            raise FleetFailedError(
                f"{len(failures)} of {len(specs)} instances are not active; `pulumi up` launches them again: "
                + "; ".join(failures[key] for key in sorted(failures))
            )
        return active

    def _booting(self, spec: LaunchSpec, instance_id: str, since: float) -> _Booting:
        return _Booting(spec, instance_id, since, scaled(wait_timeout_s(spec.instance_type)))

    def _wait(self, booting: dict[str, _Booting], failures: dict[str, str]) -> dict[str, Mapping[str, Any]]:
        active: dict[str, Mapping[str, Any]] = {}
        missing_seen: Counter[str] = Counter()
        next_report = self.clock() + scaled(PROGRESS_EVERY_S)
        listing = self.watcher.fresh(self.clock())
        while booting:
            now = self.clock()
            for key, member in list(booting.items()):
                instance = listing.instances.get(member.instance_id)
                status = instance.get("status") if instance is not None else None
                if status == "active" and instance is not None:
                    active[key] = instance
                    del booting[key]
                    continue
                reason = None
                if instance is None:
                    missing_seen[key] += 1
                    reason = "vanished while booting" if missing_seen[key] > 2 else None
                elif status in FAILED_STATUSES:
                    reason = f"became {status} while booting"
                if reason is None and now - member.since > member.timeout:
                    reason = f"not active after {member.timeout:.0f}s (status {status or 'missing'})"
                if reason is not None:
                    failures[key] = self._give_up(member, reason)
                    del booting[key]
            if not booting:
                break
            if now >= next_report:
                self.progress(f"{len(active)} instances active, {len(booting)} booting")
                next_report = now + scaled(PROGRESS_EVERY_S)
            listing = self.watcher.after(listing)
        return active

    def _give_up(self, member: _Booting, reason: str) -> str:
        message = f"{member.spec.name}: instance {member.instance_id} {reason}"
        self.progress(f"{message}; terminating it so nothing is left billing")
        try:
            terminate_quietly(self.client, member.instance_id)
        except LambdaApiError as error:
            return f"{message}, and it could not be terminated ({error}): terminate it in the Lambda Cloud console"
        return f"{message} (terminated)"


class FleetProvider(LambdaProvider):
    """The dynamic provider behind `LambdaFleet`."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        members = news.get("members")
        failures: Failures = []
        if is_unknown(members):
            return CheckResult(news, [])
        if not isinstance(members, list):
            return CheckResult(news, [CheckFailure("members", "must be a list")])
        for index, member in enumerate(members):
            failures.extend((f"members[{index}].{key}".rstrip("."), reason) for key, reason in check_member(member))
        keys = [m.get("launch_key") for m in members if isinstance(m, Mapping) and not is_unknown(m.get("launch_key"))]
        if len(keys) != len(set(keys)):
            failures.append(("members", "launch keys must be unique"))
        return CheckResult(news, [CheckFailure(key, reason) for key, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        members = news.get("members")
        changed = has_unknowns(members) or member_digest(members or []) != olds.get("members_digest")
        # Never replaced: a fleet holds no instance of its own, it brings its members up.
        return DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("fleet", self._reconcile(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._reconcile(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        listing = self._watcher(client).fresh(time.monotonic())
        instances = {}
        for key, recorded in (props.get("instances") or {}).items():
            found = carrying(listing, key)
            instances[key] = {**recorded, **_live(found[0])} if found else {**recorded, "status": "missing"}
        return ReadResult(id_, {**props, "instances": instances})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: each member is terminated by its own `LambdaInstance`."""

    def _reconcile(self, props: Mapping[str, Any]) -> dict[str, Any]:
        members: list[dict[str, Any]] = list(props.get("members") or [])
        client = self.client()
        fleet = Fleet(client, self._watcher(client), progress=report)
        live = fleet.reconcile([LaunchSpec.from_props(m) for m in members])
        return {
            "members_digest": member_digest(members),
            "instances": {m["launch_key"]: {"pool": m.get("pool"), **_live(live[m["launch_key"]])} for m in members},
        }

    def _watcher(self, client: LambdaCloudClient) -> InstanceWatcher:
        return self.endpoint().watcher(client)


def _live(instance: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "instance_id": instance["id"],
        "name": instance.get("name"),
        "region": instance["region"]["name"],
        "status": instance.get("status"),
        "ip": instance.get("ip"),
        "private_ip": instance.get("private_ip"),
        "hostname": instance.get("hostname"),
    }
