"""Create one instance without leaking or double-launching.

1. Look for an instance already carrying this resource's launch key (a crashed earlier run)
   and adopt it.
2. Launch in the region, then each fallback region on insufficient capacity. When a launch's
   outcome is unknown (no answer, 5xx after sending) list instances again and adopt a match
   rather than launching twice.
3. Wait for `active` (coalesced polling), with a timeout that fits the instance type.
4. If anything fails after the launch, terminate what was launched before raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from catalog import load_lambda_catalog
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import Disposition, LambdaApiError, LaunchOutcomeUnknownError
from providers.lambda_cloud.timing import scaled
from providers.lambda_cloud.watcher import InstanceWatcher, Listing

LAUNCH_KEY_TAG = "sophia-launch-key"
POLL_INTERVAL_S = 10.0
PROGRESS_EVERY_S = 60.0
UNKNOWN_OUTCOME_RETRIES = 3
# Single-GPU boots take 3-5 min, 8-GPU up to ~25 min: allow about double.
WAIT_TIMEOUT_S = {1: 15 * 60.0, 2: 20 * 60.0, 4: 30 * 60.0, 8: 50 * 60.0}
DEFAULT_WAIT_TIMEOUT_S = 50 * 60.0
FAILED_STATUSES = frozenset({"unhealthy", "preempted", "terminating", "terminated"})
GONE_STATUSES = frozenset({"preempted", "terminating", "terminated"})


class InstanceFailedError(Exception):
    """The instance did not become active; it has been terminated."""


def wait_timeout_s(instance_type: str) -> float:
    spec = load_lambda_catalog().instance_types.get(instance_type)
    return WAIT_TIMEOUT_S.get(spec.gpus, DEFAULT_WAIT_TIMEOUT_S) if spec else DEFAULT_WAIT_TIMEOUT_S


def terminate_quietly(client: LambdaCloudClient, instance_id: str) -> None:
    """Terminate; an instance already terminating, terminated or missing counts as done."""
    try:
        client.terminate_instances([instance_id])
    except LambdaApiError as error:
        if error.is_not_found:
            return
        # Terminating one that is already terminating has answered an unknown error: look.
        try:
            status = client.get_instance(instance_id)["status"]
        except LambdaApiError as lookup:
            if lookup.is_not_found:
                return
            raise error from None
        if status in ("terminating", "terminated"):
            return
        raise


class Launcher:
    def __init__(
        self,
        client: LambdaCloudClient,
        watcher: InstanceWatcher,
        props: Mapping[str, Any],
        *,
        progress: Callable[[str], None],
        rulesets_by_region: Callable[[], Mapping[str, list[str]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.watcher = watcher
        self.props = props
        self.progress = progress
        self.rulesets_by_region = rulesets_by_region
        self.clock = clock
        self.name: str = props["name"]
        self.launch_key: str = props["launch_key"]

    def run(self) -> Mapping[str, Any]:
        started = self.clock()
        adopted = self._match(self.watcher.fresh(started))
        if adopted is not None:
            self.progress(f"{self.name}: adopting instance {adopted['id']} launched by an earlier run")
            instance_id = str(adopted["id"])
        else:
            instance_id = self._launch()
        try:
            return self._wait_active(instance_id)
        except BaseException as error:
            self._clean_up(instance_id, error)
            raise

    # -- launching ------------------------------------------------------------------------

    def _match(self, listing: Listing) -> Mapping[str, Any] | None:
        for instance in listing.with_tag(LAUNCH_KEY_TAG, self.launch_key):
            if instance.get("status") not in GONE_STATUSES:
                return instance
        return None

    def _request(self, region: str, ruleset_ids: list[str]) -> dict[str, Any]:
        tags = {**(self.props.get("tags") or {}), LAUNCH_KEY_TAG: self.launch_key}
        request: dict[str, Any] = {
            "region_name": region,
            "instance_type_name": self.props["instance_type"],
            "ssh_key_names": list(self.props["ssh_key_names"]),
            "name": self.name,
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        }
        if self.props.get("file_system_names"):
            request["file_system_names"] = list(self.props["file_system_names"])
        if ruleset_ids:
            request["firewall_rulesets"] = [{"id": r} for r in ruleset_ids]
        if self.props.get("image"):
            request["image"] = dict(self.props["image"])
        if self.props.get("user_data"):
            request["user_data"] = self.props["user_data"]
        return request

    def _candidate_regions(self) -> list[tuple[str, list[str]]]:
        regions = [self.props["region"], *(self.props.get("fallback_regions") or [])]
        wanted = list(self.props.get("firewall_ruleset_ids") or [])
        if not wanted:
            return [(r, []) for r in regions]
        # Rulesets are regional: a region holding none of ours is no candidate (it would launch unprotected).
        by_region = self.rulesets_by_region()
        candidates = [(r, [i for i in wanted if i in by_region.get(r, [])]) for r in regions]
        usable = [(r, ids) for r, ids in candidates if ids]
        if not usable:
            raise LambdaApiError(
                "client/no-firewall-ruleset",
                f"none of the firewall rulesets {wanted} is in regions {regions}",
            )
        return usable

    def _launch(self) -> str:
        no_capacity: list[str] = []
        for region, ruleset_ids in self._candidate_regions():
            for _ in range(UNKNOWN_OUTCOME_RETRIES):
                try:
                    instance_id = self.client.launch_instance(self._request(region, ruleset_ids))
                except LaunchOutcomeUnknownError as unknown:
                    self.progress(f"{self.name}: {unknown}; looking for the instance before trying again")
                    found = self._find_after(self.clock())
                    if found is not None:
                        return found
                    continue
                except LambdaApiError as error:
                    if error.disposition is Disposition.FAILOVER:
                        no_capacity.append(region)
                        self.progress(f"{self.name}: no {self.props['instance_type']} capacity in {region}")
                        break
                    raise
                self.progress(f"{self.name}: launched {instance_id} in {region}")
                return instance_id
            else:
                raise LambdaApiError(
                    "client/launch-outcome-unknown",
                    f"{UNKNOWN_OUTCOME_RETRIES} launches of {self.name} in {region} had no answer "
                    "and no instance appeared",
                )
        raise LambdaApiError(
            "instance-operations/launch/insufficient-capacity",
            f"no capacity for {self.props['instance_type']} in {', '.join(no_capacity)}",
        )

    def _find_after(self, failed_at: float) -> str | None:
        """Adopt the instance of an unanswered launch: check a listing sent after the failure, then one more."""
        listing = self.watcher.fresh(failed_at)
        for _ in range(2):
            match = self._match(listing)
            if match is not None:
                self.progress(f"{self.name}: found {match['id']} from the unanswered launch; adopting it")
                return str(match["id"])
            listing = self.watcher.after(listing)
        return None

    # -- waiting --------------------------------------------------------------------------

    def _wait_active(self, instance_id: str) -> Mapping[str, Any]:
        started = self.clock()
        timeout = scaled(wait_timeout_s(self.props["instance_type"]))
        next_report = started + scaled(PROGRESS_EVERY_S)
        listing = self.watcher.fresh(started)
        missing = 0
        while True:
            instance = listing.instances.get(instance_id)
            if instance is None:
                missing += 1
                if missing > 2:
                    raise InstanceFailedError(f"{self.name}: instance {instance_id} vanished while booting")
            else:
                status = instance.get("status")
                if status == "active":
                    self.progress(f"{self.name}: {instance_id} active after {self.clock() - started:.0f}s")
                    return instance
                if status in FAILED_STATUSES:
                    raise InstanceFailedError(f"{self.name}: instance {instance_id} became {status} while booting")
            now = self.clock()
            if now - started > timeout:
                raise InstanceFailedError(
                    f"{self.name}: instance {instance_id} not active after {timeout:.0f}s "
                    f"(status {instance.get('status') if instance else 'missing'})"
                )
            if now >= next_report:
                self.progress(f"{self.name}: {instance_id} booting, {now - started:.0f}s of up to {timeout:.0f}s")
                next_report = now + scaled(PROGRESS_EVERY_S)
            listing = self.watcher.after(listing)

    def _clean_up(self, instance_id: str, error: BaseException) -> None:
        self.progress(f"{self.name}: create failed ({error}); terminating {instance_id} so nothing is left billing")
        try:
            terminate_quietly(self.client, instance_id)
        except LambdaApiError as cleanup:
            raise LambdaApiError(
                "client/cleanup-failed",
                f"create failed ({error}) and instance {instance_id} could not be terminated ({cleanup}): "
                "terminate it in the Lambda Cloud console",
            ) from error
