"""`InstanceProvider`: the dynamic provider behind `LambdaInstance`, one record per instance.

Create records the instance and returns at once; its id is the launch key that tags its
instance, so Read, Update and Delete find the instance whatever happened in between. The
stack's `LambdaFleet` launches recorded instances and waits for their boots (see `fleet.py`
for why). State written before that change holds real instance ids; both kinds work.

What a change does (the API can rename a running instance and nothing else):
- instance type, region, image, user data, filesystems: replace, deleting first (the new
  instance shares the launch key and must never adopt the old one);
- name: rename in place;
- tags, fallback regions, firewall rulesets, SSH key names: recorded only; they matter at
  launch, a running instance does not need them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers.lambda_cloud.base import LambdaProvider
from providers.lambda_cloud.checks import check_instance, is_unknown
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG, carrying, is_launch_key, terminate_quietly

# A running instance cannot change these: a new one is needed.
REPLACE_KEYS = ("instance_type", "region", "image", "user_data_sha256", "file_system_names")
# Recorded in state; only `name` reaches the API (a rename).
UPDATE_KEYS = ("name", "fallback_regions", "ssh_key_names", "firewall_ruleset_ids", "tags")


def user_data_digest(user_data: Any) -> str | None:
    """State keeps a digest, not the user data, which may hold join tokens."""
    if is_unknown(user_data):
        return "unknown"
    return hashlib.sha256(user_data.encode()).hexdigest() if user_data else None


def _requested(props: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as the diff compares them, normalised as the API normalises them."""
    return {
        "name": props.get("requested_name", props.get("name")),
        "instance_type": props.get("instance_type"),
        "region": props.get("requested_region", props.get("region")),
        "fallback_regions": _list(props.get("fallback_regions")),
        "image": props.get("image") or None,
        "user_data_sha256": props.get("user_data_sha256", user_data_digest(props.get("user_data"))),
        "ssh_key_names": _list(props.get("ssh_key_names")),
        "file_system_names": _list(props.get("file_system_names")),
        "firewall_ruleset_ids": _list(props.get("firewall_ruleset_ids")),
        "tags": props.get("tags") if is_unknown(props.get("tags")) else dict(props.get("tags") or {}),
    }


def _list(value: Any) -> Any:
    return value if is_unknown(value) else list(value or [])


def live_tags(instance: Mapping[str, Any]) -> dict[str, str]:
    """The tags an instance was launched with, but the launch key."""
    return {t["key"]: t["value"] for t in instance.get("tags") or [] if t.get("key") != LAUNCH_KEY_TAG}


class InstanceProvider(LambdaProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_instance(news)
        launch_key = news.get("launch_key")
        if not is_unknown(launch_key) and (not isinstance(launch_key, str) or not launch_key):
            failures.append(("launch_key", "is required (LambdaInstance derives it from the URN)"))
        return CheckResult(news, [CheckFailure(key, reason) for key, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = _requested(olds), _requested(news)
        # `name` is compared with the live name Read reported, so a console rename is put back.
        old["name"] = olds.get("name")
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
        # Recorded now; the fleet launches it. The launch key finds its instance from here on.
        return CreateResult(str(props["launch_key"]), self._outputs(props, None))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        instance = self._find(self.client(), id_, props)
        if instance is None:
            return ReadResult(None, {})  # gone, or never launched: `pulumi refresh` drops it from state
        return ReadResult(id_, self._outputs(props, instance))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.client()
        instance = self._find(client, id_, news)
        if instance is not None and instance.get("name") != news.get("name"):
            instance = client.rename_instance(str(instance["id"]), news["name"])
        return UpdateResult(self._outputs(news, instance))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        if not is_launch_key(id_):
            terminate_quietly(client, id_)
        key = props.get("launch_key") or (id_ if is_launch_key(id_) else None)
        if key:
            listing = self.endpoint().watcher(client).fresh(time.monotonic())
            for instance in carrying(listing, str(key)):
                terminate_quietly(client, str(instance["id"]))

    def _find(self, client: LambdaCloudClient, id_: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The live instance (not terminating or gone) of this resource, if there is one."""
        if not is_launch_key(id_):
            try:
                instance = client.get_instance(id_)
            except LambdaApiError as error:
                if error.is_not_found:
                    return None
                raise
            return None if instance.get("status") in ("preempted", "terminating", "terminated") else instance
        listing = self.endpoint().watcher(client).fresh(time.monotonic())
        found = carrying(listing, id_)
        return found[0] if found else None

    @staticmethod
    def _outputs(props: Mapping[str, Any], instance: Mapping[str, Any] | None) -> dict[str, Any]:
        requested = _requested(props)
        outputs = {k: v for k, v in requested.items() if k not in ("region", "name")}
        outputs.update(
            launch_key=props.get("launch_key"),
            requested_region=requested["region"],
            requested_name=requested["name"],
            name=requested["name"],
            instance_id=None,
            region=None,
            ip=None,
            private_ip=None,
            hostname=None,
            status="recorded",
            price_cents_per_hour=None,
            live_tags=None,
        )
        if instance is not None:
            outputs.update(
                instance_id=instance["id"],
                name=instance.get("name"),
                region=instance["region"]["name"],
                ip=instance.get("ip"),
                private_ip=instance.get("private_ip"),
                hostname=instance.get("hostname"),
                status=instance.get("status"),
                price_cents_per_hour=instance["instance_type"]["price_cents_per_hour"],
                live_tags=live_tags(instance),
            )
        return outputs
