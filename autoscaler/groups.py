"""The node groups' decision path: target sizes, launches and terminations, rebuilt from the Lambda API.

One `NodeGroups` serves every pool. Its only inputs are the pools document and `GET /instances`:
the service's instances carry the owner tag (`sophia-autoscaler=<cluster>`), their pool and their
launch key, so after a restart the listing gives back every size. What lives only in memory is what
the API cannot show yet: slots requested by `IncreaseSize` and not yet launched, launches that failed
(reported to cluster-autoscaler as create errors until it deletes them) and terminations under way.

No gRPC call waits for the Lambda API: a poller keeps the listing fresh (one `GET /instances` per
poll interval) and one worker launches and terminates, one launch slot at a time, through the same
client, pacing and `Launcher` as the Pulumi dynamic provider (launch keys: no leak, no duplicate).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autoscaler.config import (
    INSTANCE_TYPE_LABEL,
    LAUNCH_KEY_LABEL,
    LAUNCHED_AT_TAG,
    OWNER_TAG,
    POOL_TAG,
    PROVIDER_ID_PREFIX,
    PoolSpec,
    ServiceConfig,
)
from autoscaler.join import render_join
from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.errors import Disposition, LambdaApiError
from providers.lambda_cloud.launcher import (
    GONE_STATUSES,
    LAUNCH_KEY_LENGTH,
    LAUNCH_KEY_TAG,
    Launcher,
    LaunchSpec,
    terminate_quietly,
)
from providers.lambda_cloud.timing import scaled
from providers.lambda_cloud.watcher import InstanceWatcher, Listing

log = logging.getLogger("sophia.autoscaler")

# cloudprovider.InstanceErrorClass: 1 = out of resources (stockout or quota), 99 = other.
OUT_OF_RESOURCES = 1
OTHER_ERROR = 99
OUT_OF_RESOURCES_CODES = frozenset({"instance-operations/launch/insufficient-capacity", "global/quota-exceeded"})
# A failed launch is reported until cluster-autoscaler deletes it; dropped after this in any case.
FAILED_SLOT_TTL_S = 15 * 60.0
# Ruleset ids by name are read again after this (a ruleset replaced by Pulumi gets a new id).
RULESETS_TTL_S = 600.0
# Older than this, the listing is stale: Refresh fails and cluster-autoscaler skips its loop.
STALE_AFTER_S = 120.0
INSTANCE_ID_LENGTH = 32


class GroupError(Exception):
    """A request the node group refuses (unknown group, beyond its bounds, not its instance)."""


class StaleError(GroupError):
    """No recent answer from the Lambda API: do not act on what may be out of date."""


@dataclass
class Slot:
    """One instance asked for and not (yet) in the listing."""

    key: str
    pool: str
    requested_at: datetime
    state: str = "queued"  # queued -> launching -> launched | failed
    instance_id: str | None = None
    error_code: str = ""
    error_message: str = ""
    error_class: int = 0
    failed_at: float = 0.0
    cancelled: bool = False


@dataclass(frozen=True)
class NodeState:
    """One instance as `NodeGroupNodes` reports it."""

    provider_id: str
    state: str  # running | creating | deleting
    error_code: str = ""
    error_message: str = ""
    error_class: int = 0


@dataclass
class Counters:
    launched: int = 0
    launch_failures: int = 0
    terminated: int = 0
    hibernated: int = 0
    woken: int = 0
    events: list[str] = field(default_factory=list)


def provider_id(launch_key: str) -> str:
    return f"{PROVIDER_ID_PREFIX}{launch_key}"


def _tags(instance: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("key")): str(t.get("value")) for t in instance.get("tags") or []}


class NodeGroups:
    def __init__(
        self,
        config: ServiceConfig,
        client: LambdaCloudClient,
        watcher: InstanceWatcher,
        *,
        join_token: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        new_key: Callable[[], str] = lambda: secrets.token_hex(LAUNCH_KEY_LENGTH // 2),
    ) -> None:
        self.config = config
        self.client = client
        self.watcher = watcher
        self._join_token = join_token
        self.now = now
        self.clock = clock
        self._new_key = new_key
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._listing: Listing | None = None
        self._slots: dict[str, Slot] = {}
        self._to_terminate: dict[str, str] = {}  # instance id -> pool, not yet sent
        self._terminating: dict[str, str] = {}  # instance id -> pool, sent, the listing may not show it yet
        self.counters = Counters()
        self._rulesets: tuple[float, dict[tuple[str, str], str]] | None = None

    # -- the listing ------------------------------------------------------------------------

    def poll(self) -> Listing:
        """Fetch a fresh listing (through the shared watcher), then apply the pools' schedules."""
        listing = self.watcher.fresh(self.clock())
        self.observe(listing)
        return listing

    def observe(self, listing: Listing) -> None:
        with self._lock:
            if self._listing is not None and listing.sent_at < self._listing.sent_at:
                return
            self._listing = listing
            ours = {i["id"]: i for i in self._ours(listing)}
            for instance_id in list(self._terminating):
                instance = ours.get(instance_id)
                if instance is None or instance.get("status") in GONE_STATUSES:
                    del self._terminating[instance_id]
            live_keys = {_tags(i).get(LAUNCH_KEY_TAG) for i in ours.values()}
            for key, slot in list(self._slots.items()):
                if slot.state == "launched" and key in live_keys:
                    del self._slots[key]  # the listing shows it now
                elif slot.state == "failed" and self.clock() - slot.failed_at > scaled(FAILED_SLOT_TTL_S):
                    del self._slots[key]
            self._apply_schedules(listing)
            self._wake.notify_all()

    def fresh_enough(self) -> bool:
        with self._lock:
            return self._listing is not None and self.clock() - self._listing.sent_at <= scaled(STALE_AFTER_S)

    def _require_listing(self) -> Listing:
        if self._listing is None or not self.fresh_enough():
            raise StaleError("no recent answer from the Lambda API; sizes are unknown")
        return self._listing

    def _ours(self, listing: Listing) -> list[Mapping[str, Any]]:
        return [i for i in listing.instances.values() if _tags(i).get(OWNER_TAG) == self.config.cluster]

    def _live(self, pool: str, listing: Listing | None = None) -> list[Mapping[str, Any]]:
        """The pool's instances that count towards its size: not terminating, not gone. Without a
        `listing`, the latest one, which must be fresh (RPCs); the poller passes the one it just got."""
        listing = listing or self._require_listing()
        gone = self._to_terminate.keys() | self._terminating.keys()
        return [
            i
            for i in self._ours(listing)
            if _tags(i).get(POOL_TAG) == pool and i.get("status") not in GONE_STATUSES and i["id"] not in gone
        ]

    def _pending(self, pool: str, live: Sequence[Mapping[str, Any]]) -> list[Slot]:
        live_keys = {_tags(i).get(LAUNCH_KEY_TAG) for i in live}
        return [s for s in self._slots.values() if s.pool == pool and not s.cancelled and s.key not in live_keys]

    # -- what cluster-autoscaler asks --------------------------------------------------------

    def pool(self, name: str) -> PoolSpec:
        pool = self.config.pool(name)
        if pool is None:
            raise GroupError(f"node group {name!r} not found")
        return pool

    def bounds(self, name: str) -> tuple[int, int]:
        pool = self.pool(name)
        low, high = pool.bounds(self.now())
        with self._lock:
            if high > 0 and pool.floor == 0 and not pool.scale_from_zero and self._size(pool.name) == 0:
                high = 0  # at zero and may not leave it on demand: the schedule wakes it
        return low, high

    def _size(self, pool: str, listing: Listing | None = None) -> int:
        live = self._live(pool, listing)
        return len(live) + len(self._pending(pool, live))

    def target_size(self, name: str) -> int:
        self.pool(name)
        with self._lock:
            return self._size(name)

    def increase(self, name: str, delta: int) -> None:
        if delta <= 0:
            raise GroupError(f"size increase must be positive, got {delta}")
        _, high = self.bounds(name)
        with self._lock:
            size = self._size(name)
            if size + delta > high:
                raise GroupError(f"node group {name}: size {size} + {delta} is above its max {high}")
            self._add_slots(name, delta)

    def _add_slots(self, name: str, count: int) -> None:
        for _ in range(count):
            slot = Slot(key=self._new_key(), pool=name, requested_at=self.now())
            self._slots[slot.key] = slot
        self._wake.notify_all()

    def decrease(self, name: str, delta: int) -> None:
        """Drop requests not yet fulfilled (queued or failed launches); never an existing instance."""
        if delta >= 0:
            raise GroupError(f"size decrease must be negative, got {delta}")
        low, _ = self.bounds(name)
        with self._lock:
            size = self._size(name)
            if size + delta < low:
                raise GroupError(f"node group {name}: size {size} - {-delta} is below its min {low}")
            unfulfilled = [s for s in self._pending(name, self._live(name)) if s.state in ("queued", "failed")]
            if len(unfulfilled) < -delta:
                raise GroupError(
                    f"node group {name}: only {len(unfulfilled)} requested instances are not launched yet; "
                    f"decreasing by {-delta} would delete launched ones (use DeleteNodes)"
                )
            # Failed ones first, then the newest requests.
            unfulfilled.sort(key=lambda s: (s.state != "failed", -s.requested_at.timestamp()))
            for slot in unfulfilled[:-delta]:
                del self._slots[slot.key]

    def delete_nodes(self, name: str, nodes: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        """(provider ID, labels) of each node: terminate the instance, or cancel its request."""
        low, _ = self.bounds(name)
        with self._lock:
            live = self._live(name)
            resolved = [self._resolve(name, pid, labels, live) for pid, labels in nodes]
            foreign = [pid for (pid, _), r in zip(nodes, resolved, strict=True) if r is None]
            if foreign:
                raise GroupError(f"node group {name}: not instances of this group (Pulumi's or unknown): {foreign}")
            counted = [r for r in resolved if r is not None and not (isinstance(r, Slot) and r.state == "failed")]
            size = self._size(name)
            if size - len(counted) < low:
                raise GroupError(f"node group {name}: deleting {len(counted)} of {size} goes below its min {low}")
            for item in resolved:
                if isinstance(item, Slot):
                    if item.state in ("queued", "failed"):
                        self._slots.pop(item.key, None)
                    elif item.instance_id is not None:
                        self._slots.pop(item.key, None)
                        self._to_terminate[item.instance_id] = name
                    else:
                        item.cancelled = True  # launching: the worker terminates it when the launch returns
                elif item is not None:
                    self._to_terminate[str(item["id"])] = name
            self._wake.notify_all()

    def _resolve(
        self, name: str, pid: str, labels: Mapping[str, str], live: Sequence[Mapping[str, Any]]
    ) -> Slot | Mapping[str, Any] | None:
        ident = pid.removeprefix(PROVIDER_ID_PREFIX) if pid.startswith(PROVIDER_ID_PREFIX) else ""
        key = labels.get(LAUNCH_KEY_LABEL) or (ident if len(ident) == LAUNCH_KEY_LENGTH else "")
        for instance in live:
            if instance["id"] == ident or (key and _tags(instance).get(LAUNCH_KEY_TAG) == key):
                return instance
        slot = self._slots.get(key) or next((s for s in self._slots.values() if s.instance_id == ident), None)
        return slot if slot is not None and slot.pool == name and not slot.cancelled else None

    def group_for(self, pid: str, labels: Mapping[str, str]) -> str | None:
        """The pool of a node the service launched; None for every other node (Pulumi's floor included)."""
        if not pid.startswith(PROVIDER_ID_PREFIX) and LAUNCH_KEY_LABEL not in labels:
            return None
        with self._lock:
            for pool in self.config.pools:
                if self._resolve(pool.name, pid, labels, self._live(pool.name)) is not None:
                    return pool.name
        return None

    def nodes(self, name: str) -> list[NodeState]:
        self.pool(name)
        with self._lock:
            listing = self._require_listing()
            result = []
            live = self._live(name)
            for instance in live:
                state = "running" if instance.get("status") in ("active", "unhealthy") else "creating"
                result.append(NodeState(provider_id(_tags(instance).get(LAUNCH_KEY_TAG, instance["id"])), state))
            for slot in self._pending(name, live):
                result.append(
                    NodeState(provider_id(slot.key), "creating", slot.error_code, slot.error_message, slot.error_class)
                )
            leaving = [
                i
                for i in self._ours(listing)
                if _tags(i).get(POOL_TAG) == name and i not in live and i.get("status") != "terminated"
            ]
            result.extend(NodeState(provider_id(_tags(i).get(LAUNCH_KEY_TAG, i["id"])), "deleting") for i in leaving)
            return result

    # -- schedules: hibernation and wake-up ----------------------------------------------------

    def _apply_schedules(self, listing: Listing) -> None:
        now = self.now()
        for pool in self.config.pools:
            schedule = pool.off_hours
            if schedule is None:
                continue
            live = self._live(pool.name, listing)
            if schedule.is_off(now):
                stopped = schedule.last_stop(now)
                if stopped is None:
                    continue
                for instance in live:
                    launched = _tags(instance).get(LAUNCHED_AT_TAG, "0")
                    if int(launched) < stopped.timestamp():
                        self._to_terminate[str(instance["id"])] = pool.name
                        self.counters.hibernated += 1
                for slot in self._pending(pool.name, live):
                    if slot.requested_at < stopped and slot.state in ("queued", "failed"):
                        del self._slots[slot.key]
            else:
                low, _ = pool.bounds(now)
                missing = low - self._size(pool.name, listing)
                if missing > 0:
                    self.counters.woken += missing
                    self._add_slots(pool.name, missing)

    # -- the worker ----------------------------------------------------------------------------

    def step(self) -> bool:
        """Do one piece of work (a termination, else a launch); False when there is none."""
        with self._lock:
            termination = next(iter(self._to_terminate.items()), None)
            slot = None
            if termination is None:
                slot = next((s for s in self._slots.values() if s.state == "queued" and not s.cancelled), None)
                if slot is not None:
                    slot.state = "launching"
            listing = self._listing
        if termination is not None:
            self._terminate(*termination)
            return True
        if slot is not None and listing is not None:
            self._launch(slot, listing)
            return True
        return False

    def _terminate(self, instance_id: str, pool: str) -> None:
        try:
            terminate_quietly(self.client, instance_id)
        except LambdaApiError as error:
            log.warning("terminating %s failed (%s); trying again", instance_id, error)
            if error.disposition is not Disposition.RETRY:
                with self._lock:
                    self._to_terminate.pop(instance_id, None)
            return
        with self._lock:
            self._to_terminate.pop(instance_id, None)
            self._terminating[instance_id] = pool
            self.counters.terminated += 1
        log.info("terminated %s of pool %s", instance_id, pool)

    def _launch(self, slot: Slot, listing: Listing) -> None:
        pool = self.pool(slot.pool)
        spec = self.launch_spec(pool, slot.key)
        try:
            instance_id = Launcher(self.client, self.watcher, spec, progress=log.info).launch(listing)
        except LambdaApiError as error:
            with self._lock:
                slot.state = "failed"
                slot.failed_at = self.clock()
                slot.error_code = error.code.rsplit("/", 1)[-1]
                slot.error_message = str(error)[:200]
                slot.error_class = OUT_OF_RESOURCES if error.code in OUT_OF_RESOURCES_CODES else OTHER_ERROR
                self.counters.launch_failures += 1
            log.warning("launch for pool %s failed: %s", pool.name, error)
            return
        with self._lock:
            slot.state = "launched"
            slot.instance_id = instance_id
            self.counters.launched += 1
            if slot.cancelled:
                self._slots.pop(slot.key, None)
                self._to_terminate[instance_id] = pool.name

    def launch_spec(self, pool: PoolSpec, key: str) -> LaunchSpec:
        user_data = None
        if self.config.join is not None and self._join_token:
            user_data = render_join(
                pool.name,
                self.config.join.server_url,
                self.config.join.k3s_version,
                self._join_token,
                extra_labels={LAUNCH_KEY_LABEL: key, INSTANCE_TYPE_LABEL: pool.instance_type, **pool.labels},
                provider_id=provider_id(key),
            )
        return LaunchSpec(
            launch_key=key,
            name=f"{self.config.cluster}-{pool.name}-as-{key[:10]}",
            instance_type=pool.instance_type,
            region=pool.region,
            fallback_regions=pool.fallback_regions,
            ssh_key_names=pool.ssh_key_names,
            rulesets_by_region=self._ruleset_ids(pool),
            user_data=user_data,
            tags={
                **pool.tags,
                OWNER_TAG: self.config.cluster,
                POOL_TAG: pool.name,
                LAUNCHED_AT_TAG: str(int(self.now().timestamp())),
            },
        )

    def _ruleset_ids(self, pool: PoolSpec) -> dict[str, tuple[str, ...]]:
        """Region -> ids of the pool's rulesets, by name; a name not found leaves its region without one."""
        if not pool.firewall_rulesets:
            return {}
        cached = self._rulesets
        wanted = {(r, n) for r, names in pool.firewall_rulesets.items() for n in names}
        if cached is None or self.clock() - cached[0] > scaled(RULESETS_TTL_S) or not wanted <= cached[1].keys():
            listing = self.client.list_firewall_rulesets()
            cached = (self.clock(), {(r["region"]["name"], r["name"]): str(r["id"]) for r in listing})
            self._rulesets = cached
        ids = cached[1]
        return {
            region: tuple(ids[(region, n)] for n in names if (region, n) in ids)
            for region, names in pool.firewall_rulesets.items()
        }

    # -- threads ---------------------------------------------------------------------------------

    def run_worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worked = self.step()
            except Exception:  # the worker must outlive any one failure
                log.exception("worker step failed")
                worked = False
            if not worked:
                with self._lock:
                    self._wake.wait(timeout=scaled(1.0))

    def run_poller(self, stop: threading.Event) -> None:
        listing: Listing | None = None
        while not stop.is_set():
            try:
                listing = self.watcher.after(listing) if listing is not None else self.poll()
                self.observe(listing)
            except LambdaApiError as error:  # the API down: RPCs answer UNAVAILABLE once the listing is stale
                log.warning("listing instances failed: %s", error)
                stop.wait(self.watcher.poll_interval)
                listing = None
            except Exception:  # the poller must outlive any one failure
                log.exception("poller step failed")
                stop.wait(self.watcher.poll_interval)
                listing = None

    def wake(self) -> None:
        with self._lock:
            self._wake.notify_all()
