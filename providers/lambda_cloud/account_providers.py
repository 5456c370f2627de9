"""Dynamic providers for the account-level Lambda resources: SSH keys, firewall rulesets, filesystems."""

from __future__ import annotations

import time
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers.lambda_cloud.base import LambdaProvider
from providers.lambda_cloud.checks import Failures, api_rules, check_filesystem, check_ruleset, check_ssh_key
from providers.lambda_cloud.errors import LambdaApiError
from providers.lambda_cloud.launcher import GONE_STATUSES
from providers.lambda_cloud.timing import scaled

RULESET_IN_USE = "firewall-rulesets/firewall-ruleset-in-use"
# Termination takes seconds to a minute or two; a ruleset waits this long for its instances to go.
IN_USE_WAIT_S = 10 * 60.0


def _check(news: dict[str, Any], failures: Failures) -> CheckResult:
    return CheckResult(news, [CheckFailure(key, reason) for key, reason in failures])


def _changed(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if olds.get(k) != news.get(k)]


def _ignore_missing(error: LambdaApiError) -> None:
    if not error.is_not_found:
        raise error


class SshKeyProvider(LambdaProvider):
    """An SSH public key registered with Lambda; the API cannot edit one, so any change replaces it."""

    KEYS = ("name", "public_key")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return _check(news, check_ssh_key(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = _changed(olds, news, self.KEYS)
        # Names are unique in the account: the old key must go before the new one is added.
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self.client()
        existing = next((k for k in client.list_ssh_keys() if k["name"] == props["name"]), None)
        if existing is not None:
            if existing["public_key"].strip() != props["public_key"].strip():
                raise LambdaApiError(
                    "client/ssh-key-name-taken",
                    f"an SSH key named {props['name']!r} already exists with a different public key",
                )
            key = existing  # same name and key: a previous run created it; adopt rather than fail
        else:
            key = client.add_ssh_key(props["name"], props["public_key"])
        return CreateResult(key["id"], {"name": key["name"], "public_key": key["public_key"], "key_id": key["id"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        key = next((k for k in self.client().list_ssh_keys() if k["id"] == id_), None)
        if key is None:
            return ReadResult(None, {})
        return ReadResult(id_, {"name": key["name"], "public_key": key["public_key"], "key_id": id_})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        try:
            self.client().delete_ssh_key(id_)
        except LambdaApiError as error:
            _ignore_missing(error)


class FirewallRulesetProvider(LambdaProvider):
    """A regional firewall ruleset; name and rules update in place, a new region replaces it."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return _check(news, check_ruleset(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = _changed(olds, news, ("region",))
        updates = _changed(olds, news, ("name",))
        if api_rules(olds.get("rules") or []) != api_rules(news.get("rules") or []):
            updates.append("rules")
        return DiffResult(changes=bool(replaces or updates), replaces=replaces)

    @staticmethod
    def _outputs(ruleset: dict[str, Any]) -> dict[str, Any]:
        return {
            "ruleset_id": ruleset["id"],
            "name": ruleset["name"],
            "region": ruleset["region"]["name"],
            "rules": ruleset["rules"],
            "instance_ids": ruleset.get("instance_ids", []),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        ruleset = self.client().create_firewall_ruleset(props["name"], props["region"], api_rules(props["rules"]))
        return CreateResult(ruleset["id"], self._outputs(ruleset))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            ruleset = self.client().get_firewall_ruleset(id_)
        except LambdaApiError as error:
            _ignore_missing(error)
            return ReadResult(None, {})
        return ReadResult(id_, self._outputs(ruleset))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        updated = self.client().update_firewall_ruleset(id_, news["name"], api_rules(news["rules"]))
        return UpdateResult(self._outputs(updated))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Returns once the ruleset is gone. The engine deletes instances first and their rulesets at
        once after: while a terminating instance still holds the ruleset, wait (bounded) for it."""
        client = self.client()
        watcher = self.endpoint().watcher(client)
        deadline = time.monotonic() + scaled(IN_USE_WAIT_S)
        while True:
            try:
                client.delete_firewall_ruleset(id_)
                return
            except LambdaApiError as error:
                if error.is_not_found:
                    return
                if error.code != RULESET_IN_USE:
                    raise
            refused_at = time.monotonic()
            users = client.get_firewall_ruleset(id_).get("instance_ids") or []
            listing = watcher.fresh(refused_at)
            statuses = {i: (listing.instances.get(i) or {}).get("status", "gone") for i in users}
            staying = sorted(i for i, status in statuses.items() if status not in (*GONE_STATUSES, "gone"))
            name = props.get("name") or id_
            if staying:
                raise LambdaApiError(
                    RULESET_IN_USE,
                    f"firewall ruleset {name} is used by instance(s) "
                    + ", ".join(f"{i} ({statuses[i]})" for i in staying)
                    + " that this deletion does not terminate: terminate or move them first",
                )
            if time.monotonic() > deadline:
                raise LambdaApiError(
                    RULESET_IN_USE,
                    f"firewall ruleset {name} is still held by terminating instance(s) {', '.join(sorted(users))} "
                    f"after {scaled(IN_USE_WAIT_S):.0f}s",
                )
            watcher.after(listing)  # one poll interval, shared with every other waiter


class FilesystemProvider(LambdaProvider):
    """A shared filesystem. It holds data: components create it with `protect=True`."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return _check(news, check_filesystem(news))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = _changed(olds, news, ("name", "region"))
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    @staticmethod
    def _outputs(fs: dict[str, Any]) -> dict[str, Any]:
        return {
            "filesystem_id": fs["id"],
            "name": fs["name"],
            "region": fs["region"]["name"],
            "mount_point": fs["mount_point"],
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self.client()
        existing = next(
            (
                f
                for f in client.list_filesystems()
                if f["name"] == props["name"] and f["region"]["name"] == props["region"]
            ),
            None,
        )
        fs = existing or client.create_filesystem(props["name"], props["region"])
        return CreateResult(fs["id"], self._outputs(fs))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        fs = next((f for f in self.client().list_filesystems() if f["id"] == id_), None)
        return ReadResult(id_, self._outputs(fs)) if fs else ReadResult(None, {})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        try:
            self.client().delete_filesystem(id_)
        except LambdaApiError as error:
            _ignore_missing(error)
