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
from datetime import UTC, datetime, timedelta
from typing import Any

from autoscaler.config import (
    LAUNCH_KEY_LABEL,
    LAUNCHED_AT_TAG,
    OWNER_TAG,
    POOL_TAG,
    PROVIDER_ID_PREFIX,
    PoolSpec,
    ServiceConfig,
    pool_labels,
)
from autoscaler.join import render_join
from autoscaler.kube import KubeApi
from autoscaler.reaper import NodeReaper
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
# Instance types' specs (the disk size the template node reports) are read again after this.
INSTANCE_TYPES_TTL_S = 3600.0
# Older than this, the listing is stale: Refresh fails and cluster-autoscaler skips its loop.
STALE_AFTER_S = 120.0
# A termination the API refused for now (5xx, 429, no answer, after the client's own retries) is tried
# again after a delay that doubles up to a cap, taking turns with launches meanwhile.
TERMINATE_RETRY_S = 5.0
TERMINATE_RETRY_MAX_S = 120.0
# A failed wake-up (the schedule's own launch, which cluster-autoscaler's backoff does not cover) is
# tried again after a delay that doubles up to a cap: the autoscaler's own node-group backoff defaults
# (--initial-node-group-backoff-duration 5m, --max-node-group-backoff-duration 30m, flags.go @1.36.1).
WAKE_BACKOFF_S = 5 * 60.0
WAKE_BACKOFF_MAX_S = 30 * 60.0
# A termination the API refused for good (4xx) is reported on the node and left; the off-hours sweep
# asks again after this (cluster-autoscaler asks again whenever it finds the node unneeded).
TERMINATE_FAILED_RETRY_S = 10 * 60.0
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
    wake: bool = False
    """Asked for by the pool's schedule (wake-up), not by cluster-autoscaler."""


@dataclass
class Termination:
    """An instance to terminate, not sent yet (or refused for now and waiting to be tried again)."""

    pool: str
    attempts: int = 0
    not_before: float = 0.0


@dataclass(frozen=True)
class TerminationFailure:
    """A termination the API refused for good: the instance runs on and its node says why."""

    code: str
    message: str
    at: float


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
    termination_failures: int = 0
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
        kube: KubeApi | None = None,
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
        self._to_terminate: dict[str, Termination] = {}  # instance id -> not yet sent (or to try again)
        self._terminating: dict[str, str] = {}  # instance id -> pool, sent, the listing may not show it yet
        self._termination_failed: dict[str, TerminationFailure] = {}  # instance id -> refused for good
        self._last_work = ""  # "launch" or "terminate": the worker alternates when both wait
        self._wake_backoff: dict[str, tuple[int, datetime]] = {}  # pool -> (failed wake-ups in a row, until)
        self.counters = Counters()
        self._rulesets: tuple[float, dict[tuple[str, str], str]] | None = None
        self._storage_gib: tuple[float, dict[str, int]] | None = None  # instance type -> disk, when read
        self.reaper = NodeReaper(kube, watcher, clock=clock) if kube is not None else None
        """Deletes the Nodes of instances that are gone (None without the Kubernetes API: tests, local runs)."""
        self._seen_gone: set[str] = set()  # our instances seen terminating or gone, for the reaper

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
            confirmed = False
            for instance_id in list(self._terminating):
                instance = ours.get(instance_id)
                if instance is None or instance.get("status") in GONE_STATUSES:
                    del self._terminating[instance_id]
                    confirmed = True
            gone = {i for i, instance in ours.items() if instance.get("status") in GONE_STATUSES}
            if self.reaper is not None and (confirmed or gone - self._seen_gone):
                self.reaper.request()  # their Nodes stay NotReady for ever otherwise
            self._seen_gone = gone
            for instance_id in list(self._termination_failed):
                if instance_id not in ours or ours[instance_id].get("status") in GONE_STATUSES:
                    del self._termination_failed[instance_id]
            live_keys = {_tags(i).get(LAUNCH_KEY_TAG) for i in ours.values()}
            for key, slot in list(self._slots.items()):
                if slot.state == "launched" and key in live_keys:
                    del self._slots[key]  # the listing shows it now
                elif slot.state == "failed" and self.clock() - slot.failed_at > scaled(FAILED_SLOT_TTL_S):
                    del self._slots[key]
            self._apply_schedules(listing)
            self._wake.notify_all()

    def refresh_instance_types(self) -> None:
        """Read the instance types' specs when due (the poller calls this; no RPC waits on it)."""
        if self._storage_gib is not None and self.clock() - self._storage_gib[0] < scaled(INSTANCE_TYPES_TTL_S):
            return
        types = self.client.instance_types()
        storage = {
            name: int(entry["instance_type"]["specs"]["storage_gib"])
            for name, entry in types.items()
            if "storage_gib" in entry.get("instance_type", {}).get("specs", {})
        }
        with self._lock:
            self._storage_gib = (self.clock(), storage)

    def storage_gib(self, instance_type: str) -> int:
        """The type's disk as the API last reported it; StaleError until the API has answered once."""
        with self._lock:
            known = self._storage_gib[1] if self._storage_gib is not None else {}
        if instance_type not in known:
            raise StaleError(f"the disk size of {instance_type} is not known yet (GET /instance-types)")
        return known[instance_type]

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

    def _add_slots(self, name: str, count: int, *, wake: bool = False) -> None:
        for _ in range(count):
            slot = Slot(key=self._new_key(), pool=name, requested_at=self.now(), wake=wake)
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
            # Asked again for a node already leaving (a retried call): done already, not an error.
            nodes = [(pid, labels) for pid, labels in nodes if not self._leaving(name, pid, labels)]
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
                        self._queue_termination(item.instance_id, name)
                    else:
                        item.cancelled = True  # launching: the worker terminates it when the launch returns
                elif item is not None:
                    self._queue_termination(str(item["id"]), name)
            self._wake.notify_all()

    def _queue_termination(self, instance_id: str, pool: str) -> None:
        self._termination_failed.pop(instance_id, None)
        self._to_terminate.setdefault(instance_id, Termination(pool))

    def _ident_key(self, pid: str, labels: Mapping[str, str]) -> tuple[str, str]:
        ident = pid.removeprefix(PROVIDER_ID_PREFIX) if pid.startswith(PROVIDER_ID_PREFIX) else ""
        return ident, labels.get(LAUNCH_KEY_LABEL) or (ident if len(ident) == LAUNCH_KEY_LENGTH else "")

    def _leaving(self, name: str, pid: str, labels: Mapping[str, str]) -> bool:
        """Whether the node is one of this group's that is already being removed: its termination is
        queued or sent, the listing shows it terminating or gone, or its launch was cancelled."""
        ident, key = self._ident_key(pid, labels)
        listing = self._require_listing()
        for instance in self._ours(listing):
            tags = _tags(instance)
            if tags.get(POOL_TAG) == name and (instance["id"] == ident or (key and tags.get(LAUNCH_KEY_TAG) == key)):
                return (
                    instance["id"] in self._to_terminate
                    or instance["id"] in self._terminating
                    or instance.get("status") in GONE_STATUSES
                )
        slot = self._slots.get(key)
        return slot is not None and slot.pool == name and slot.cancelled

    def _resolve(
        self, name: str, pid: str, labels: Mapping[str, str], live: Sequence[Mapping[str, Any]]
    ) -> Slot | Mapping[str, Any] | None:
        ident, key = self._ident_key(pid, labels)
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
                pid = provider_id(_tags(instance).get(LAUNCH_KEY_TAG, instance["id"]))
                failure = self._termination_failed.get(instance["id"])
                if failure is None:
                    result.append(NodeState(pid, state))
                else:  # cluster-autoscaler was told it would go; the node says why it did not
                    result.append(NodeState(pid, state, failure.code, failure.message, OTHER_ERROR))
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
                    failure = self._termination_failed.get(str(instance["id"]))
                    if failure is not None and self.clock() - failure.at < scaled(TERMINATE_FAILED_RETRY_S):
                        continue
                    if int(launched) < stopped.timestamp():
                        self._queue_termination(str(instance["id"]), pool.name)
                        self.counters.hibernated += 1
                for slot in self._pending(pool.name, live):
                    if slot.requested_at < stopped and slot.state in ("queued", "failed"):
                        del self._slots[slot.key]
            else:
                backoff = self._wake_backoff.get(pool.name)
                if backoff is not None and now < backoff[1]:
                    continue  # the last wake-up failed: wait, as cluster-autoscaler would
                low, _ = pool.bounds(now)
                missing = low - self._size(pool.name, listing)
                if missing > 0:
                    self.counters.woken += missing
                    self._add_slots(pool.name, missing, wake=True)

    # -- the worker ----------------------------------------------------------------------------

    def step(self) -> bool:
        """Do one piece of work, a termination or a launch, taking turns when both wait (a termination
        the API keeps refusing must not hold launches back); False when there is none ready."""
        with self._lock:
            now = self.clock()
            termination = next(((i, t) for i, t in self._to_terminate.items() if t.not_before <= now), None)
            listing = self._listing
            slot = None
            if listing is not None:
                slot = next((s for s in self._slots.values() if s.state == "queued" and not s.cancelled), None)
            if termination is not None and slot is not None:
                if self._last_work == "terminate":
                    termination = None
                else:
                    slot = None
            if slot is not None:
                slot.state = "launching"
                self._last_work = "launch"
            elif termination is not None:
                self._last_work = "terminate"
        if termination is not None:
            self._terminate(*termination)
            return True
        if slot is not None and listing is not None:
            self._launch(slot, listing)
            return True
        return False

    def _terminate(self, instance_id: str, termination: Termination) -> None:
        try:
            terminate_quietly(self.client, instance_id)
        except Exception as error:  # noqa: BLE001 - retried later or reported, never lost
            self._termination_refused(instance_id, termination, error)
            return
        with self._lock:
            self._to_terminate.pop(instance_id, None)
            self._terminating[instance_id] = termination.pool
            self.counters.terminated += 1
        log.info("terminated %s of pool %s", instance_id, termination.pool)

    def _termination_refused(self, instance_id: str, termination: Termination, error: Exception) -> None:
        for_good = isinstance(error, LambdaApiError) and error.disposition is not Disposition.RETRY
        delay = 0.0
        with self._lock:
            if not for_good:
                termination.attempts += 1
                delay = min(scaled(TERMINATE_RETRY_S) * 2 ** (termination.attempts - 1), scaled(TERMINATE_RETRY_MAX_S))
                termination.not_before = self.clock() + delay
            else:
                self._to_terminate.pop(instance_id, None)
                code = error.code if isinstance(error, LambdaApiError) else "unknown"
                self._termination_failed[instance_id] = TerminationFailure(
                    f"termination-failed/{code.rsplit('/', 1)[-1]}", str(error)[:200], self.clock()
                )
                self.counters.termination_failures += 1
        if for_good:
            log.error(
                "terminating %s of pool %s failed and is not retried until asked again; the instance still "
                "runs and bills: %s",
                instance_id,
                termination.pool,
                error,
            )
        else:
            log.warning("terminating %s failed (%s); trying again in %.1f s", instance_id, error, delay)

    def _launch(self, slot: Slot, listing: Listing) -> None:
        """Launch one slot; whatever fails on the way (the ruleset lookup, the spec, the launch) marks the
        request failed, so cluster-autoscaler sees a create error and backs off, never a request stuck
        launching."""
        try:
            pool = self.pool(slot.pool)
            spec = self.launch_spec(pool, slot.key)
            instance_id = Launcher(self.client, self.watcher, spec, progress=log.info).launch(listing)
        except Exception as error:  # noqa: BLE001 - any failure is reported to cluster-autoscaler
            self._launch_failed(slot, error)
            return
        with self._lock:
            slot.state = "launched"
            slot.instance_id = instance_id
            self.counters.launched += 1
            if slot.wake:
                self._wake_backoff.pop(slot.pool, None)
            if slot.cancelled:
                self._slots.pop(slot.key, None)
                self._queue_termination(instance_id, pool.name)

    def _launch_failed(self, slot: Slot, error: Exception) -> None:
        code = error.code if isinstance(error, LambdaApiError) else f"service/{type(error).__name__}"
        with self._lock:
            slot.state = "failed"
            slot.failed_at = self.clock()
            slot.error_code = code.rsplit("/", 1)[-1] or "unknown"
            slot.error_message = str(error)[:200]
            slot.error_class = OUT_OF_RESOURCES if code in OUT_OF_RESOURCES_CODES else OTHER_ERROR
            self.counters.launch_failures += 1
            if slot.wake:
                failures = self._wake_backoff.get(slot.pool, (0, self.now()))[0] + 1
                delay = min(WAKE_BACKOFF_S * 2 ** (failures - 1), WAKE_BACKOFF_MAX_S)
                self._wake_backoff[slot.pool] = (failures, self.now() + timedelta(seconds=delay))
                log.warning("wake-up of pool %s failed %d times in a row; next in %.0f s", slot.pool, failures, delay)
        if isinstance(error, LambdaApiError):
            log.warning("launch for pool %s failed: %s", slot.pool, error)
        else:
            log.error("launch for pool %s failed unexpectedly", slot.pool, exc_info=error)

    def launch_spec(self, pool: PoolSpec, key: str) -> LaunchSpec:
        user_data = None
        if self.config.join is not None and self._join_token:
            user_data = render_join(
                pool.name,
                self.config.join.server_url,
                self.config.join.k3s_version,
                self._join_token,
                labels={**pool_labels(pool.name, pool.instance_type, pool.labels), LAUNCH_KEY_LABEL: key},
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
                listing = self.watcher.after(listing) if listing is not None else self.watcher.fresh(self.clock())
                try:  # before the first listing counts: template nodes need the specs from the start
                    self.refresh_instance_types()
                except LambdaApiError as error:
                    log.warning("reading instance types failed (template nodes wait for them): %s", error)
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
        if self.reaper is not None:
            self.reaper.wake()
