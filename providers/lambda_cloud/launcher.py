"""Launch one instance without leaking or double-launching, and find it again later.

Every instance carries its resource's launch key (`sha256(URN)[:24]`) as a tag, so the resource
can always find its instance, whatever answer was lost:

1. Adopt an instance that already carries the key (an earlier run launched it).
2. Launch in the region, then each fallback region on insufficient capacity. When a launch's
   outcome is unknown (no answer, 5xx after sending) list instances again and adopt a match
   rather than launching twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.catalog import load_lambda_catalog
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import Disposition, LambdaApiError, LaunchOutcomeUnknownError
from providers.lambda_cloud.watcher import InstanceWatcher, Listing

LAUNCH_KEY_TAG = "sophia-launch-key"
LAUNCH_KEY_LENGTH = 24
UNKNOWN_OUTCOME_RETRIES = 3
# Single-GPU boots take 3-5 min, 8-GPU up to ~25 min: allow about double.
WAIT_TIMEOUT_S = {1: 15 * 60.0, 2: 20 * 60.0, 4: 30 * 60.0, 8: 50 * 60.0}
DEFAULT_WAIT_TIMEOUT_S = 50 * 60.0
FAILED_STATUSES = frozenset({"unhealthy", "preempted", "terminating", "terminated"})
GONE_STATUSES = frozenset({"preempted", "terminating", "terminated"})


def wait_timeout_s(instance_type: str) -> float:
    spec = load_lambda_catalog().instance_types.get(instance_type)
    return WAIT_TIMEOUT_S.get(spec.gpus, DEFAULT_WAIT_TIMEOUT_S) if spec else DEFAULT_WAIT_TIMEOUT_S


def is_launch_key(resource_id: str) -> bool:
    """Instances recorded since launches moved to the fleet have their launch key as resource id."""
    return len(resource_id) == LAUNCH_KEY_LENGTH


def carrying(listing: Listing, launch_key: str) -> list[Mapping[str, Any]]:
    """Instances of the listing that carry the key and still bill (not terminating or gone)."""
    return [i for i in listing.with_tag(LAUNCH_KEY_TAG, launch_key) if i.get("status") not in GONE_STATUSES]


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


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a launch request needs, for one instance."""

    launch_key: str
    name: str
    instance_type: str
    region: str
    fallback_regions: Sequence[str] = ()
    ssh_key_names: Sequence[str] = ()
    rulesets_by_region: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Firewall rulesets of each candidate region; empty when the instance uses none."""
    file_system_names: Sequence[str] = ()
    image: Mapping[str, str] | None = None
    user_data: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> LaunchSpec:
        return cls(
            launch_key=str(props["launch_key"]),
            name=str(props["name"]),
            instance_type=str(props["instance_type"]),
            region=str(props["region"]),
            fallback_regions=tuple(props.get("fallback_regions") or ()),
            ssh_key_names=tuple(props.get("ssh_key_names") or ()),
            rulesets_by_region={r: tuple(ids) for r, ids in (props.get("firewall_rulesets") or {}).items()},
            file_system_names=tuple(props.get("file_system_names") or ()),
            image=dict(props["image"]) if props.get("image") else None,
            user_data=props.get("user_data") or None,
            tags=dict(props.get("tags") or {}),
        )

    def request(self, region: str) -> dict[str, Any]:
        tags = {**self.tags, LAUNCH_KEY_TAG: self.launch_key}
        request: dict[str, Any] = {
            "region_name": region,
            "instance_type_name": self.instance_type,
            "ssh_key_names": list(self.ssh_key_names),
            "name": self.name,
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        }
        if self.file_system_names:
            request["file_system_names"] = list(self.file_system_names)
        if self.rulesets_by_region.get(region):
            request["firewall_rulesets"] = [{"id": r} for r in self.rulesets_by_region[region]]
        if self.image:
            request["image"] = dict(self.image)
        if self.user_data:
            request["user_data"] = self.user_data
        return request

    def candidate_regions(self) -> list[str]:
        regions = [self.region, *self.fallback_regions]
        if not self.rulesets_by_region:
            return regions
        # Rulesets are regional: a region holding none of ours is no candidate (it would launch unprotected).
        usable = [r for r in regions if self.rulesets_by_region.get(r)]
        if not usable:
            raise LambdaApiError("client/no-firewall-ruleset", f"{self.name}: no firewall ruleset in regions {regions}")
        return usable


class Launcher:
    """Adopt or launch the instance of one spec; returns its id once the API has accepted it."""

    def __init__(
        self,
        client: LambdaCloudClient,
        watcher: InstanceWatcher,
        spec: LaunchSpec,
        *,
        progress: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.watcher = watcher
        self.spec = spec
        self.progress = progress
        self.clock = clock

    def launch(self, listing: Listing) -> str:
        """`listing` was sent after every earlier attempt for this spec could have launched."""
        found = carrying(listing, self.spec.launch_key)
        if found:
            self.progress(f"{self.spec.name}: adopting instance {found[0]['id']} launched by an earlier run")
            return str(found[0]["id"])
        no_capacity: list[str] = []
        for region in self.spec.candidate_regions():
            instance_id = self._launch_in(region)
            if instance_id is not None:
                return instance_id
            no_capacity.append(region)
        raise LambdaApiError(
            "instance-operations/launch/insufficient-capacity",
            f"no capacity for {self.spec.instance_type} in {', '.join(no_capacity)}",
        )

    def _launch_in(self, region: str) -> str | None:
        """The id launched or adopted in `region`, or None when the region has no capacity."""
        for _ in range(UNKNOWN_OUTCOME_RETRIES):
            try:
                instance_id = self.client.launch_instance(self.spec.request(region))
            except LaunchOutcomeUnknownError as unknown:
                self.progress(f"{self.spec.name}: {unknown}; looking for the instance before trying again")
                found = self._find_after(self.clock())
                if found is not None:
                    return found
                continue
            except LambdaApiError as error:
                if error.disposition is Disposition.FAILOVER:
                    self.progress(f"{self.spec.name}: no {self.spec.instance_type} capacity in {region}")
                    return None
                raise
            self.progress(f"{self.spec.name}: launched {instance_id} in {region}")
            return instance_id
        raise LambdaApiError(
            "client/launch-outcome-unknown",
            f"{UNKNOWN_OUTCOME_RETRIES} launches of {self.spec.name} in {region} had no answer "
            "and no instance appeared",
        )

    def _find_after(self, failed_at: float) -> str | None:
        """Adopt the instance of an unanswered launch: check a listing sent after the failure, then one more."""
        listing = self.watcher.fresh(failed_at)
        for _ in range(2):
            found = carrying(listing, self.spec.launch_key)
            if found:
                self.progress(f"{self.spec.name}: found {found[0]['id']} from the unanswered launch; adopting it")
                return str(found[0]["id"])
            listing = self.watcher.after(listing)
        return None
