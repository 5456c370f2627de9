"""What the node-group service serves: the pools, their bounds and schedules (one JSON document).

The Pulumi program renders this document from the stack's settings (`components/compute/autoscaler.py`)
into a ConfigMap; `python -m autoscaler --pools-file` (or `AUTOSCALER_POOLS` / `AUTOSCALER_POOLS_FILE`)
reads it. The service keeps no other state: sizes come from the Lambda API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Tags on every instance the service launches: which service launched it (Pulumi's never carry this tag,
# so neither side touches the other's), its pool, and when it was launched (the off-hours sweep reads it).
OWNER_TAG = "sophia-autoscaler"
POOL_TAG = "pool"
LAUNCHED_AT_TAG = "sophia-launched-at"
POOL_LABEL = "sophia.ai/pool"
LAUNCH_KEY_LABEL = "sophia.ai/launch-key"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_LABEL = "sophia.ai/gpu"
PROVIDER_ID_PREFIX = "lambda://"


class ConfigError(ValueError):
    """The pools document is missing or malformed."""


@dataclass(frozen=True)
class OffHours:
    """A pool that stops at `stop_at` and starts at `start_at` (local times), optionally off at weekends."""

    timezone: str
    stop_at: str
    start_at: str
    weekends_off: bool = True

    def _local(self, clock: str, day: datetime) -> datetime:
        hour, minute = (int(p) for p in clock.split(":"))
        return datetime.combine(day.date(), time(hour, minute), tzinfo=day.tzinfo)

    def _working_day(self, day: datetime) -> bool:
        return not (self.weekends_off and day.weekday() >= 5)

    def is_off(self, now: datetime) -> bool:
        """Whether `now` (aware) is outside working hours."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if not self._working_day(local):
            return True
        start, stop = self._local(self.start_at, local), self._local(self.stop_at, local)
        if start < stop:
            return not (start <= local < stop)
        return stop <= local < start  # working hours span midnight

    def last_stop(self, now: datetime) -> datetime | None:
        """The latest moment at or before `now` when the pool went off (a stop time or a weekend's
        first minute), or None when it has not gone off in the past eight days."""
        local = now.astimezone(ZoneInfo(self.timezone))
        candidates = []
        for back in range(9):
            day = local - timedelta(days=back)
            candidates += [self._local(self.stop_at, day), self._local("00:00", day)]
        second = timedelta(seconds=1)
        for moment in sorted((c for c in candidates if c <= local), reverse=True):
            if self.is_off(moment) and not self.is_off(moment - second):
                return moment
        return None


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class PoolSpec:
    """One pool: Pulumi runs `floor` instances, the service runs the rest up to `max`."""

    name: str
    instance_type: str
    min: int
    max: int
    floor: int
    """Instances Pulumi owns (outside the node group): `min`, or 0 for a pool with `off_hours`."""
    region: str
    fallback_regions: tuple[str, ...] = ()
    ssh_key_names: tuple[str, ...] = ()
    firewall_rulesets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Region -> names of our rulesets there (resolved to ids through the API at launch); a region
    without one is never launched in. Empty: launch without rulesets (tests only)."""
    scale_from_zero: bool = True
    off_hours: OffHours | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    """Cost tags every instance carries (the service adds its own)."""

    def bounds(self, now: datetime) -> tuple[int, int]:
        """(min, max) of the node group, which holds only the service's instances."""
        if self.off_hours is not None and self.off_hours.is_off(now):
            return 0, (self.max - self.floor) if self.scale_from_zero else 0
        if self.off_hours is not None:
            return self.min - self.floor, self.max - self.floor
        return 0, self.max - self.floor


@dataclass(frozen=True)
class JoinSpec:
    """How new instances join the cluster (k3s agent); the token comes from the environment."""

    server_url: str
    k3s_version: str


@dataclass(frozen=True)
class ServiceConfig:
    cluster: str
    """Account prefix (`sophia-prod`): instance names start with it and the owner tag holds it."""
    pools: tuple[PoolSpec, ...]
    join: JoinSpec | None = None

    def pool(self, name: str) -> PoolSpec | None:
        return next((p for p in self.pools if p.name == name), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServiceConfig:
        try:
            document = json.loads(text)
            return cls.from_dict(document)
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"invalid pools document: {type(error).__name__}: {error}") from None

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ServiceConfig:
        pools = tuple(_pool(p) for p in document["pools"])
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ConfigError(f"pool names must be unique, got {names}")
        join = document.get("join")
        return cls(
            cluster=str(document["cluster"]),
            pools=pools,
            join=JoinSpec(str(join["server_url"]), str(join["k3s_version"])) if join else None,
        )


def _pool(raw: Mapping[str, Any]) -> PoolSpec:
    off = raw.get("off_hours")
    pool = PoolSpec(
        name=str(raw["name"]),
        instance_type=str(raw["instance_type"]),
        min=int(raw["min"]),
        max=int(raw["max"]),
        floor=int(raw["floor"]),
        region=str(raw["region"]),
        fallback_regions=tuple(raw.get("fallback_regions") or ()),
        ssh_key_names=tuple(raw.get("ssh_key_names") or ()),
        firewall_rulesets={r: tuple(ids) for r, ids in (raw.get("firewall_rulesets") or {}).items()},
        scale_from_zero=bool(raw.get("scale_from_zero", True)),
        off_hours=OffHours(**off) if off else None,
        labels=dict(raw.get("labels") or {}),
        taints=tuple(Taint(**t) for t in raw.get("taints") or ()),
        tags=dict(raw.get("tags") or {}),
    )
    if not 0 <= pool.floor <= pool.min <= pool.max:
        raise ConfigError(f"pool {pool.name}: need 0 <= floor <= min <= max, got {pool.floor}, {pool.min}, {pool.max}")
    return pool


def gpu_model(instance_type: str) -> str:
    """`gpu_1x_a100` -> `a100`: the value of the GPU label."""
    return instance_type.split("_", 2)[-1]


def pool_labels(pool: str, instance_type: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels every node of a pool carries, floor and burst alike: the join script sets them (the
    kubelet adds os and arch), the template node repeats them. The GPU label is the one `GPULabel`
    names: cluster-autoscaler holds back a node that has it until its GPUs are allocatable
    (processors/customresources/gpu_processor.go), and counts GPU nodes by it."""
    return {POOL_LABEL: pool, INSTANCE_TYPE_LABEL: instance_type, GPU_LABEL: gpu_model(instance_type), **(extra or {})}
