"""`InstanceProvider`: the dynamic provider behind `LambdaInstance`."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers.lambda_cloud.base import LambdaProvider, report
from providers.lambda_cloud.checks import check_instance
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.launcher import GONE_STATUSES, POLL_INTERVAL_S, Launcher, terminate_quietly
from providers.lambda_cloud.timing import scaled, time_scale
from providers.lambda_cloud.watcher import InstanceWatcher, watcher_for

# Changing any of these needs a new instance: the API cannot change them on a running one.
REPLACE_KEYS = (
    "instance_type",
    "region",
    "image",
    "user_data_sha256",
    "ssh_key_names",
    "file_system_names",
    "firewall_ruleset_ids",
    "tags",
)
UPDATE_KEYS = ("name", "fallback_regions")


def user_data_digest(user_data: str | None) -> str | None:
    """State keeps a digest, not the user data, which may hold join tokens."""
    return hashlib.sha256(user_data.encode()).hexdigest() if user_data else None


def _requested(props: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as the diff compares them (old outputs store the same shape)."""
    return {
        "name": props.get("name"),
        "instance_type": props.get("instance_type"),
        "region": props.get("requested_region", props.get("region")),
        "fallback_regions": list(props.get("fallback_regions") or []),
        "image": props.get("image") or None,
        "user_data_sha256": props.get("user_data_sha256", user_data_digest(props.get("user_data"))),
        "ssh_key_names": list(props.get("ssh_key_names") or []),
        "file_system_names": list(props.get("file_system_names") or []),
        "firewall_ruleset_ids": list(props.get("firewall_ruleset_ids") or []),
        "tags": dict(props.get("tags") or {}),
    }


class _RulesetRegions:
    """Region of each firewall ruleset, listed once per poll interval for every create in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._by_region: dict[str, list[str]] = {}

    def get(self, client: LambdaCloudClient) -> dict[str, list[str]]:
        with self._lock:
            if time.monotonic() - self._at > scaled(POLL_INTERVAL_S):
                by_region: dict[str, list[str]] = {}
                for ruleset in client.list_firewall_rulesets():
                    by_region.setdefault(ruleset["region"]["name"], []).append(ruleset["id"])
                self._by_region, self._at = by_region, time.monotonic()
            return self._by_region


_RULESET_REGIONS = _RulesetRegions()


class InstanceProvider(LambdaProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_instance(news)
        if not isinstance(news.get("launch_key"), str) or not news.get("launch_key"):
            failures.append(("launch_key", "is required (LambdaInstance derives it from the URN)"))
        return CheckResult(news, [CheckFailure(key, reason) for key, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = _requested(olds), _requested(news)
        replaces = [k.replace("user_data_sha256", "user_data") for k in REPLACE_KEYS if old[k] != new[k]]
        updates = [k for k in UPDATE_KEYS if old[k] != new[k]]
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            stables=["launch_key"],
            # The old instance goes first: the new one must never adopt it (same launch key).
            delete_before_replace=True,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self.client()
        launcher = Launcher(
            client,
            self._watcher(client),
            props,
            progress=report,
            rulesets_by_region=lambda: _RULESET_REGIONS.get(client),
        )
        instance = launcher.run()
        return CreateResult(str(instance["id"]), self._outputs(props, instance))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            instance = self.client().get_instance(id_)
        except LambdaApiError as error:
            if error.is_not_found:
                return ReadResult(None, {})  # gone: `pulumi refresh` drops it from state
            raise
        if instance.get("status") in GONE_STATUSES:
            return ReadResult(None, {})
        return ReadResult(id_, self._outputs(props, instance))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.client()
        if olds.get("name") != news.get("name"):
            instance = client.rename_instance(id_, news["name"])
        else:
            instance = client.get_instance(id_)
        return UpdateResult(self._outputs(news, instance))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        terminate_quietly(self.client(), id_)

    def _watcher(self, client: LambdaCloudClient) -> InstanceWatcher:
        endpoint = self.endpoint()
        return watcher_for(
            (endpoint.base_url, endpoint.fingerprint, time_scale()),
            client.list_instances,
            scaled(POLL_INTERVAL_S),
        )

    @staticmethod
    def _outputs(props: Mapping[str, Any], instance: Mapping[str, Any]) -> dict[str, Any]:
        requested = _requested(props)
        outputs = {k: v for k, v in requested.items() if k != "region"}
        outputs.update(
            launch_key=props.get("launch_key"),
            requested_region=requested["region"],
            instance_id=instance["id"],
            region=instance["region"]["name"],
            ip=instance.get("ip"),
            private_ip=instance.get("private_ip"),
            hostname=instance.get("hostname"),
            status=instance.get("status"),
            price_cents_per_hour=instance["instance_type"]["price_cents_per_hour"],
        )
        return outputs
