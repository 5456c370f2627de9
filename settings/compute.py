"""GPU pools on Lambda Cloud: sizes, schedules, access, cluster join (`sophia:gpuPools`, `sophia:lambda*`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, Strict, field_validator, model_validator

from policies.catalog import load_lambda_catalog
from settings.base import (
    MAX_POOL_INSTANCES,
    MAX_POOLS,
    NON_PUBLIC_NETWORKS,
    SettingsModel,
    check_lambda_region,
    ipv4_network,
)
from settings.errors import RuleError

MAX_SCALE_DOWN_DELAY_MINUTES = 24 * 60
_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]{1,128}|@sha256:[0-9a-f]{64})$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SSH_KEY_TYPES = frozenset(
    {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)


class OffHoursSchedule(SettingsModel):
    """When a pool is scaled to zero (the plan's 'automated hibernation for development instances')."""

    timezone: str
    """IANA time zone the clock times are in, e.g. `America/Los_Angeles`."""
    stop_at: str
    """Local time (HH:MM) the pool stops each working day."""
    start_at: str
    """Local time (HH:MM) the pool starts each working day."""
    weekends_off: bool = True
    """Whether the pool also stays off all Saturday and Sunday."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """An IANA time zone."""
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfo's failures for bad or odd names
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'America/Los_Angeles')") from None
        return value

    @field_validator("stop_at", "start_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        """24-hour HH:MM."""
        if not _CLOCK.match(value):
            raise ValueError(f"must be a 24-hour time HH:MM, got {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct_times(self) -> OffHoursSchedule:
        """startAt differs from stopAt."""
        if self.stop_at == self.start_at:
            raise RuleError([("startAt", f"must differ from stopAt ({self.stop_at})")])
        return self


class GpuPoolSettings(SettingsModel):
    """One pool of identical Lambda GPU instances."""

    name: str
    """Pool name, lowercase letters, digits and dashes (used in instance names and tags)."""
    instance_type: str
    """Lambda instance type; must be in the price catalog (`policies/catalog/lambda_catalog.json`)."""
    min: Annotated[int, Strict(), Field(ge=0, le=MAX_POOL_INSTANCES)]
    """Fewest instances the pool may run."""
    desired: Annotated[int, Strict(), Field(ge=0, le=MAX_POOL_INSTANCES)]
    """Instances the stack runs now."""
    max: Annotated[int, Strict(), Field(ge=1, le=MAX_POOL_INSTANCES)]
    """Most instances the pool may run."""
    off_hours: OffHoursSchedule | None = None
    """Optional schedule that scales the pool to zero outside working hours."""
    scale_from_zero: Annotated[bool, Strict()] = True
    """With `sophia:autoscaler`: whether pending pods may start an instance while the pool runs none
    (a floor of zero: `min` 0, or off-hours); false keeps it at zero until its schedule wakes it."""

    def floor(self, autoscaled: bool) -> int:
        """Instances Pulumi runs: `desired` without the autoscaler; with it `min`, or 0 for a pool with
        `offHours` (its schedule, through the node-group service, owns every instance)."""
        if not autoscaled:
            return self.desired
        return 0 if self.off_hours is not None else self.min

    @model_validator(mode="before")
    @classmethod
    def _no_pool_scale_down_delay(cls, data: Any) -> Any:
        """scaleDownDelayMinutes is gone: the delay is one for all pools (sophia:autoscaler)."""
        if isinstance(data, dict) and ("scaleDownDelayMinutes" in data or "scale_down_delay_minutes" in data):
            raise RuleError(
                [
                    (
                        "scaleDownDelayMinutes",
                        "is no longer a pool setting: set sophia:autoscaler.scaleDownUnneededMinutes, which "
                        "applies to every pool (per-pool options would turn off cluster-autoscaler's node "
                        "startup allowance; docs/autoscaling.md)",
                    )
                ]
            )
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """2-32 lowercase letters, digits or dashes, starting with a letter."""
        if not _NAME.match(value):
            raise ValueError(f"must be 2-32 lowercase letters, digits or dashes, starting with a letter; got {value!r}")
        return value

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        """An instance type of the price catalog."""
        known = load_lambda_catalog().instance_types
        if value not in known:
            raise ValueError(f"unknown instance type {value!r}; allowed: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> GpuPoolSettings:
        """min <= desired <= max."""
        sizes = f"min={self.min}, desired={self.desired}, max={self.max}"
        if self.min > self.desired:
            raise RuleError([("min", f"must be <= desired (min <= desired <= max); got {sizes}")])
        if self.desired > self.max:
            raise RuleError([("desired", f"must be <= max (min <= desired <= max); got {sizes}")])
        return self


class IngressRule(SettingsModel):
    """Extra inbound access to the GPU instances, e.g. 443 for inference endpoints."""

    protocol: str
    """tcp or udp."""
    from_port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    """First port of the range."""
    to_port: Annotated[int, Strict(), Field(ge=1, le=65535)]
    """Last port of the range (the same as fromPort for one port)."""
    cidrs: Annotated[tuple[str, ...], Field(max_length=32)]
    """IPv4 sources; the policy pack decides which ports may face 0.0.0.0/0."""
    description: Annotated[str, Field(max_length=128)] = ""
    """Shown in the Lambda console next to the rule."""

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        """tcp or udp."""
        if value not in ("tcp", "udp"):
            raise ValueError(f"must be tcp or udp, got {value!r}")
        return value

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """At least one IPv4 CIDR, no host bits."""
        if not value:
            raise ValueError("must list at least one source network")
        for cidr in value:
            ipv4_network(cidr)
        return value

    @model_validator(mode="after")
    def _range(self) -> IngressRule:
        """fromPort <= toPort."""
        if self.from_port > self.to_port:
            raise RuleError([("toPort", f"must be >= fromPort ({self.from_port}); got {self.to_port}")])
        return self


class LambdaAccessSettings(SettingsModel):
    """How operators reach the GPU instances: one SSH key, SSH open only to these networks."""

    ssh_public_key: str
    """OpenSSH public key installed on every instance (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)."""
    ssh_allowed_cidrs: Annotated[tuple[str, ...], Field(max_length=32)]
    """Public IPv4 networks allowed to reach port 22; never 0.0.0.0/0."""
    ingress: Annotated[tuple[IngressRule, ...], Field(max_length=32)] = ()
    """Further inbound rules for the pools' firewall rulesets."""

    @field_validator("ssh_public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        """One OpenSSH public key line of a known type, at most 4096 characters."""
        parts = value.split()
        if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES or len(value) > 4096:
            raise ValueError(
                "must be one OpenSSH public key line (ssh-ed25519 AAAA... comment), at most 4096 characters"
            )
        return value

    @field_validator("ssh_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """At least one public IPv4 network; never 0.0.0.0/0."""
        if not value:
            raise ValueError("must list at least one network (SSH is closed otherwise)")
        for cidr in value:
            network = ipv4_network(cidr)
            if network.prefixlen == 0:
                raise ValueError("must not open SSH to the whole internet (0.0.0.0/0)")
            if any(network.overlaps(block) for block in NON_PUBLIC_NETWORKS):
                raise ValueError(f"{cidr} is not a public network (Lambda firewall rules take public sources)")
        return value


class ClusterJoinSettings(SettingsModel):
    """Optional: instances join the platform's Kubernetes cluster as agents at boot."""

    server_url: str
    """The cluster's agent join URL, https://host:6443."""
    # to_camel would spell it k3SVersion; the documented key is k3sVersion.
    k3s_version: str = Field(default="v1.31.4+k3s1", alias="k3sVersion")
    """Pinned k3s agent version installed by cloud-init."""

    @field_validator("server_url")
    @classmethod
    def _https(cls, value: str) -> str:
        """https://host[:port]."""
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?$", value):
            raise ValueError(f"must be https://host[:port], got {value!r}")
        return value

    @field_validator("k3s_version")
    @classmethod
    def _pinned(cls, value: str) -> str:
        """A pinned k3s release (v1.31.4+k3s1)."""
        if not re.match(r"^v\d+\.\d+\.\d+\+k3s\d+$", value):
            raise ValueError(f"must be a pinned k3s release such as v1.31.4+k3s1, got {value!r}")
        return value


class AutoscalerSettings(SettingsModel):
    """Elastic pools: cluster-autoscaler (upstream, pinned) with the Lambda node-group service
    (`autoscaler/`, externalgrpc). Pulumi keeps each pool's floor; the autoscaler adds burst up to `max`."""

    service_image: str
    """Image of the node-group service, built from `autoscaler/Dockerfile`, pinned by tag or digest."""
    namespace: str = "sophia-autoscaler"
    """Namespace of cluster-autoscaler and the node-group service in the primary cluster."""
    scan_interval_seconds: Annotated[int, Strict(), Field(ge=5, le=60)] = 10
    """How often cluster-autoscaler looks for pending pods and unneeded nodes."""
    scale_down_delay_after_add_minutes: Annotated[int, Strict(), Field(ge=1, le=120)] = 20
    """No scale-down for this long after a scale-up (a GPU node needs its boot to take pods)."""
    scale_down_unneeded_minutes: Annotated[int, Strict(), Field(ge=5, le=MAX_SCALE_DOWN_DELAY_MINUTES)] = 20
    """How long a burst node stays unneeded before it is removed, in every pool. Longer than a boot
    (1-GPU 3-5 min, 8-GPU up to 25), so a short lull does not pay for a second boot."""

    @field_validator("service_image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        """registry/repository:tag or @sha256:digest; never `latest`."""
        if not _IMAGE.match(value) or value.endswith(":latest"):
            raise ValueError(
                f"must be a pinned image, registry/repository:tag or @sha256:<digest> (not latest), got {value!r}"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        """A DNS label."""
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
            raise ValueError(f"must be a DNS label (lowercase letters, digits, dashes), got {value!r}")
        return value


def _catalog_region(value: str) -> str:
    """A Lambda region of the catalog."""
    check_lambda_region(value)
    return value


def _no_repeats(value: tuple[str, ...]) -> tuple[str, ...]:
    """No region twice."""
    if len(set(value)) != len(value):
        raise ValueError("must not list a region twice")
    return value


def _unique_names(value: tuple[GpuPoolSettings, ...]) -> tuple[GpuPoolSettings, ...]:
    """Pool names are unique."""
    names = [pool.name for pool in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
    return value


LambdaRegion = Annotated[str, AfterValidator(_catalog_region)]
"""A region of the Lambda price catalog."""
FallbackRegions = Annotated[tuple[LambdaRegion, ...], Field(max_length=16), AfterValidator(_no_repeats)]
"""Lambda regions tried in order when the primary has no capacity."""
GpuPools = Annotated[tuple[GpuPoolSettings, ...], Field(max_length=MAX_POOLS), AfterValidator(_unique_names)]
"""The stack's pools."""


def hourly_cost_usd(pools: tuple[GpuPoolSettings, ...]) -> Decimal:
    """What the pools cost per hour at their desired size, from the price catalog."""
    catalog = load_lambda_catalog()
    return sum((catalog.instance_type(p.instance_type).price_usd_per_hour * p.desired for p in pools), Decimal(0))
