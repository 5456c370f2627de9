"""The service fleet: the platform's services on the GPU pools (`sophia:services`, `sophia:fleet`).

Each service is a Deployment per pool it runs on, routed through the fleet's Gateway, scaled by
KEDA on the plan's triggers ("Scaling Triggers", 2.1) and traced. The PromQL behind the queue and
latency triggers follows the metric contract in docs/services.md:

- queue depth: `sum(sophia_request_queue_depth{namespace="<ns>", service="<name>"})`, requests
  waiting in the service's own queue, judged per replica (KEDA `AverageValue`);
- p95 latency: `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket
  {namespace="<ns>", service="<name>"}[<window>]))) * 1000`, in milliseconds (KEDA `Value`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BeforeValidator, Field, Strict, field_validator, model_validator

from settings.base import SettingsModel, check_dns_name
from settings.compute import OffHoursSchedule
from settings.errors import RuleError

MAX_SERVICES = 200
"""The plan's 100+ services, with room to double."""
MAX_SERVICE_REPLICAS = 200
MAX_POOLS_PER_SERVICE = 4
MAX_GPUS_PER_POD = 8
# KEDA 2.20 is tested on Kubernetes 1.33-1.35 and Envoy Gateway 1.9 on 1.33-1.36: the fleet's
# operators need a cluster of at least this minor version.
FLEET_MIN_KUBERNETES_MINOR = 33

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,22}[a-z0-9])$")
_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
# An immutable release tag: a version (1.4.2, v2.0.1-rc.1, 2026.11.20), never a moving name.
_VERSION_TAG = re.compile(r"^v?\d+(\.\d+){1,3}([-+][0-9A-Za-z.-]+)?$")
_REPOSITORY = re.compile(r"^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9]([a-z0-9._/-]*[a-z0-9])?)*$")
_CPU = re.compile(r"^(\d+)m$|^(\d+(\.\d{1,3})?)$")
_MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")
_WINDOW = re.compile(r"^(\d+)(s|m|h)$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,255}$")
MIN_CPU_MILLIS, MAX_CPU_MILLIS = 10, 64_000
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 16, 512 * 1024


class ServiceKind(StrEnum):
    """The plan's three kinds of service (1.2, "Request routing by service type")."""

    AI = "ai"
    BUSINESS = "business"
    DATA = "data"


def check_pinned_image(value: str) -> str:
    """A pinned image: `repository@sha256:<digest>` or `repository:<version tag>` (never latest)."""
    if _DIGEST.fullmatch(value):
        return value
    repository, _, tag = value.rpartition(":")
    if "/" in tag or not repository or not _REPOSITORY.fullmatch(repository) or not _VERSION_TAG.fullmatch(tag):
        raise ValueError(
            "must be pinned: repository@sha256:<64 hex digits> or repository:<version tag> "
            f"such as ghcr.io/sophia-ai/gateway:1.4.2; got {value!r}"
        )
    return value


def cpu_millis(value: str) -> int:
    """'500m' -> 500, '2' -> 2000, '1.5' -> 1500."""
    match = _CPU.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a CPU quantity such as 500m or 2; got {value!r}")
    if match.group(1) is not None:
        return int(match.group(1))
    return int(Decimal(match.group(2)) * 1000)


def memory_mib(value: str) -> int:
    """'512Mi' -> 512, '4Gi' -> 4096."""
    match = _MEMORY.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a memory quantity in Mi or Gi such as 512Mi or 4Gi; got {value!r}")
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def window_seconds(value: str) -> int:
    """'5m' -> 300."""
    match = _WINDOW.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a Prometheus duration such as 5m or 90s; got {value!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _pool_list(value: Any) -> Any:
    # One pool as a plain name, several as a list.
    return (value,) if isinstance(value, str) else value


def _distinct_pools(value: tuple[str, ...]) -> tuple[str, ...]:
    """One to four pool names, each once."""
    if not value:
        raise ValueError("must name at least one GPU pool")
    if len(set(value)) != len(value):
        raise ValueError("must not name a pool twice")
    return value


class ServiceResources(SettingsModel):
    """What one replica requests; limits are the same (Guaranteed QoS: the scaling percentages are of this)."""

    cpu: str
    """CPU per replica, e.g. `500m` or `2` (10m to 64 cores)."""
    memory: str
    """Memory per replica, e.g. `512Mi` or `8Gi` (16Mi to 512Gi)."""
    gpus: Annotated[int, Strict(), Field(ge=0, le=MAX_GPUS_PER_POD)] = 0
    """NVIDIA GPUs per replica (`nvidia.com/gpu`); 0 for a CPU-only service."""

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        """A Kubernetes CPU quantity from 10m to 64."""
        try:
            millis = cpu_millis(value)
        except (ValueError, InvalidOperation):
            raise ValueError(f"must be a CPU quantity such as 500m or 2; got {value!r}") from None
        if not MIN_CPU_MILLIS <= millis <= MAX_CPU_MILLIS:
            raise ValueError(f"must be between 10m and 64 CPUs; got {value!r}")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        """A Kubernetes memory quantity in Mi or Gi, 16Mi to 512Gi."""
        if not MIN_MEMORY_MIB <= memory_mib(value) <= MAX_MEMORY_MIB:
            raise ValueError(f"must be between 16Mi and 512Gi; got {value!r}")
        return value

    @property
    def cpu_millis(self) -> int:
        return cpu_millis(self.cpu)

    @property
    def memory_mib(self) -> int:
        return memory_mib(self.memory)


class ReplicaRange(SettingsModel):
    """Replicas the scaler keeps a service between (per pool it runs on)."""

    min: Annotated[int, Strict(), Field(ge=1, le=MAX_SERVICE_REPLICAS)]
    """Fewest replicas while the service is up (off-hours services go to zero outside their hours)."""
    max: Annotated[int, Strict(), Field(ge=1, le=MAX_SERVICE_REPLICAS)]
    """Most replicas the scaler may run."""

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaRange:
        """min <= max."""
        if self.min > self.max:
            raise RuleError([("min", f"must be <= max; got min={self.min}, max={self.max}")])
        return self


class ScalingSettings(SettingsModel):
    """The plan's scaling triggers (2.1); a service scales up when any one is crossed."""

    cpu_percent: Annotated[int, Strict(), Field(ge=1, le=100)] = 70
    """CPU utilisation of the requested CPU, percent (the plan: >70 %)."""
    memory_percent: Annotated[int, Strict(), Field(ge=1, le=100)] = 80
    """Memory utilisation of the requested memory, percent (the plan: >80 %)."""
    queue_depth: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] = 100
    """Queued requests per replica (the plan: >100): `sum(sophia_request_queue_depth{namespace, service})`."""
    p95_latency_ms: Annotated[int, Strict(), Field(ge=1, le=600_000)] = 500
    """p95 response time in ms (the plan: >500 ms): `histogram_quantile(0.95, ...[window]) * 1000`."""
    window: str = "5m"
    """The plan's "for 5 minutes": the window of the p95 latency trigger's rate, and how long every
    trigger must stay low before the scaler removes replicas (scale-down stabilization); 1m to 1h."""

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        """A Prometheus duration from 1m to 1h (at least two 30 s scrapes)."""
        if not 60 <= window_seconds(value) <= 3600:
            raise ValueError(f"must be from 1m to 1h; got {value!r}")
        return value

    @property
    def window_seconds(self) -> int:
        return window_seconds(self.window)


class NextRelease(SettingsModel):
    """A release served beside the current one: canary at a small weight, blue-green at 100."""

    image: str
    """The next image, pinned like `image`."""
    weight: Annotated[int, Strict(), Field(ge=0, le=100)]
    """Percent of the service's traffic the next release gets (0 keeps it warm without traffic)."""

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        """Pinned by digest or a version tag."""
        return check_pinned_image(value)


class ServiceDrSettings(SettingsModel):
    """The service in the DR region (warm standby)."""

    standby_replicas: Annotated[int, Strict(), Field(ge=0, le=MAX_SERVICE_REPLICAS)] = 1
    """Replicas kept running in DR while the primary serves (per pool); DR scales from there on failover."""


class ServiceSettings(SettingsModel):
    """One service of the fleet."""

    name: str
    """2-24 lowercase letters, digits and dashes, starting with a letter: object names, metric label."""
    kind: ServiceKind
    """`ai`, `business` or `data`: which HTTPRoute serves it and which dashboard shows it."""
    image: str
    """Container image pinned by digest (`repo@sha256:...`) or an immutable version tag (`repo:1.4.2`)."""
    port: Annotated[int, Strict(), Field(ge=1024, le=65535)]
    """HTTP port the container listens on (unprivileged: the pods run as non-root)."""
    health_path: str = "/healthz"
    """HTTP path of the readiness and liveness probes."""
    pool: Annotated[
        tuple[str, ...],
        BeforeValidator(_pool_list),
        Field(max_length=MAX_POOLS_PER_SERVICE),
        AfterValidator(_distinct_pools),
    ]
    """The GPU pool it runs on, or a list of pools: traffic is then weighted by each pool's GPU capability."""
    resources: ServiceResources
    """CPU, memory and GPUs per replica."""
    replicas: ReplicaRange
    """Replica bounds per pool."""
    scaling: ScalingSettings = ScalingSettings()
    """Scaling triggers; the defaults are the plan's."""
    off_hours: OffHoursSchedule | None = None
    """Optional: scaled to zero outside these hours (development hibernation), like a pool's offHours."""
    next: NextRelease | None = None
    """Optional canary or blue-green release; removing it (or weight 0) is the rollback."""
    dr: ServiceDrSettings = ServiceDrSettings()
    """Warm standby in the DR region."""
    callers: Annotated[tuple[str, ...], Field(max_length=MAX_SERVICES)] = ()
    """Services allowed to call this one directly (its NetworkPolicy admits them and the gateway)."""
    timeout_seconds: Annotated[int | None, Strict(), Field(ge=1, le=3600)] = None
    """Per-request timeout at the gateway; default by kind: ai 60, business 10, data 30."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """2-24 lowercase letters, digits or dashes, starting with a letter."""
        if not _NAME.match(value):
            raise ValueError(f"must be 2-24 lowercase letters, digits or dashes, starting with a letter; got {value!r}")
        return value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        """Pinned by digest or a version tag."""
        return check_pinned_image(value)

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        """An absolute URL path."""
        if not _PATH.fullmatch(value):
            raise ValueError(f"must be an absolute path such as /healthz; got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        """next.image differs from image; dr.standbyReplicas <= replicas.max; not a caller of itself."""
        problems: list[tuple[str, str]] = []
        if self.next is not None and self.next.image == self.image:
            problems.append(("next.image", "must differ from image (the release already serving)"))
        if self.dr.standby_replicas > self.replicas.max:
            problems.append(
                ("dr.standbyReplicas", f"must be <= replicas.max ({self.replicas.max}); got {self.dr.standby_replicas}")
            )
        if self.name in self.callers:
            problems.append(("callers", f"must not list the service itself ({self.name})"))
        if problems:
            raise RuleError(problems)
        return self

    @property
    def request_timeout_seconds(self) -> int:
        return self.timeout_seconds or DEFAULT_TIMEOUT_SECONDS[self.kind]


DEFAULT_TIMEOUT_SECONDS = {ServiceKind.AI: 60, ServiceKind.BUSINESS: 10, ServiceKind.DATA: 30}
STARTUP_SECONDS = {ServiceKind.AI: 600, ServiceKind.BUSINESS: 120, ServiceKind.DATA: 120}
"""The longest a replica may take to start (its startup probe's budget): AI services load models."""
KEDA_POLLING_SECONDS = 15
"""How often KEDA asks each scaler (and activates a ScaledObject at zero)."""
HPA_SYNC_SECONDS = 15
"""kube-controller-manager's `--horizontal-pod-autoscaler-sync-period` (the default; EKS keeps it)."""
SCRAPE_SECONDS = 30
"""Prometheus's scrape interval of the services: a new load shows in the triggers within one scrape."""


@dataclass(frozen=True)
class Recovery:
    """How a service comes back in the DR region after the primary dies (worst case, seconds)."""

    dns_seconds: int
    """Route 53 declares the primary down and clients drop the cached answer: interval x threshold + TTL."""
    serving_seconds: int
    """The service answers in DR: at once for a warm standby (its replicas are ready before the failover);
    a cold one (standbyReplicas 0) waits for KEDA to activate it and a replica to start."""
    scaled_seconds: int
    """The first replicas added for the failed-over load take traffic: the load shows in the triggers
    (one scrape), the HPA acts (one sync), a replica starts."""

    @property
    def warm(self) -> bool:
        return self.serving_seconds == self.dns_seconds


def service_recovery(service: ServiceSettings, dns_seconds: int) -> Recovery:
    """The RTO arithmetic of one service: DNS failover plus scale-up from its standby (docs/services.md)."""
    startup = STARTUP_SECONDS[service.kind]
    serving = dns_seconds if service.dr.standby_replicas > 0 else dns_seconds + KEDA_POLLING_SECONDS + startup
    return Recovery(dns_seconds, serving, serving + SCRAPE_SECONDS + HPA_SYNC_SECONDS + startup)


def _unique_services(value: tuple[ServiceSettings, ...]) -> tuple[ServiceSettings, ...]:
    """Service names are unique; callers name services of the fleet."""
    names = [service.name for service in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"service names must be unique; repeated: {', '.join(duplicates)}")
    known = set(names)
    problems = [
        (f"{index}.callers", f"names unknown services: {', '.join(sorted(set(s.callers) - known))}")
        for index, s in enumerate(value)
        if set(s.callers) - known
    ]
    if problems:
        raise RuleError(problems)
    return value


Services = Annotated[tuple[ServiceSettings, ...], Field(max_length=MAX_SERVICES), AfterValidator(_unique_services)]
"""The fleet."""


class GatewaySettings(SettingsModel):
    """The fleet's public entry point: one Gateway (Envoy Gateway) with HTTPS on 443."""

    hostnames: Annotated[tuple[str, ...], Field(min_length=1, max_length=16)]
    """Names the HTTPS listener serves and its certificate covers: the failover record (api.sophia.ai)
    and this region's endpoint (api-primary.sophia.ai or api-dr.sophia.ai)."""
    acme_email: str
    """Contact of the ACME (Let's Encrypt) account that issues the gateway's certificate."""
    hosted_zone_id: str
    """Route 53 hosted zone of the host names: cert-manager proves them there (DNS-01); the dr stack's
    `failover.hostedZoneId`."""
    pool: str | None = None
    """GPU pool whose nodes run the gateway's proxies (they tolerate its taint); unset: untainted nodes."""
    health_service: str | None = None
    """Service whose health path answers `healthPath` on the gateway: what Route 53's health check of
    this region requests (DNS, load balancer, proxies and a ready replica, end to end)."""
    health_path: str = "/healthz"
    """Path of the gateway's health route; the dr stack's `failover.healthCheckPath` requests it."""

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, value: str) -> str:
        """An absolute URL path."""
        if not _PATH.fullmatch(value):
            raise ValueError(f"must be an absolute path such as /healthz; got {value!r}")
        return value

    @field_validator("hostnames")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Lowercase DNS names, each once."""
        for host in value:
            check_dns_name(host)
        if len(set(value)) != len(value):
            raise ValueError("must not list a host name twice")
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        """A Route 53 hosted zone id (Z...)."""
        if not re.fullmatch(r"Z[A-Z0-9]{1,31}", value):
            raise ValueError(f"must be a Route 53 hosted zone id (Z...), got {value!r}")
        return value

    @field_validator("acme_email")
    @classmethod
    def _email(cls, value: str) -> str:
        """An e-mail address."""
        if not re.fullmatch(r"[A-Za-z0-9._%+-]{1,64}@[a-z0-9.-]{1,190}\.[a-z]{2,63}", value):
            raise ValueError(f"must be an e-mail address; got {value!r}")
        return value


class TracingSettings(SettingsModel):
    """Traces from the services: OpenTelemetry Collector in front of Jaeger."""

    sample_ratio: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] = 0.1
    """Share of traces kept (parent-based, trace-id ratio), 0 < ratio <= 1."""
    retention_hours: Annotated[int, Strict(), Field(ge=1, le=720)] = 72
    """How long Jaeger keeps spans."""
    storage_gib: Annotated[int, Strict(), Field(ge=1, le=4096)] = 50
    """Jaeger's span store volume, GiB."""


@dataclass(frozen=True)
class Ec2Shape:
    """An EC2 instance type the DR region's fleet node groups may use (AWS's instance type pages)."""

    vcpus: int
    memory_gib: int
    gpus: int
    gpu_tflops: int
    """Dense BF16 tensor TFLOPS per GPU (NVIDIA's data sheets); 0 without a GPU."""


DR_INSTANCE_TYPES: Mapping[str, Ec2Shape] = {
    "g6e.2xlarge": Ec2Shape(8, 64, 1, 362),  # 1 x L40S 48 GB
    "g6e.4xlarge": Ec2Shape(16, 128, 1, 362),
    "g6e.12xlarge": Ec2Shape(48, 384, 4, 362),
    "g6.4xlarge": Ec2Shape(16, 64, 1, 121),  # 1 x L4 24 GB
    "m6i.2xlarge": Ec2Shape(8, 32, 0, 0),
    "m6i.4xlarge": Ec2Shape(16, 64, 0, 0),
    "r6i.2xlarge": Ec2Shape(8, 64, 0, 0),
    "r6i.4xlarge": Ec2Shape(16, 128, 0, 0),
}
"""EC2 types for the DR fleet's node groups: GPU nodes with NVIDIA's L40S or L4, and general nodes."""
DR_CLIENT_NAMESPACES = ("sophia-apps",)
"""The DR region's client namespaces (components/dr/region.py, `DR_KUBERNETES`): the stores admit them."""


class NodeGroupSettings(SettingsModel):
    """An EKS managed node group in the DR region standing in for one of the primary's GPU pools:
    its nodes carry the pool's label and taint, so the fleet renders the same there."""

    pool: str
    """The primary's pool name the services name (`sophia:gpuPools[].name`)."""
    instance_type: str
    """EC2 instance type (see the list in docs/services.md)."""
    min: Annotated[int, Strict(), Field(ge=0, le=100)]
    """Nodes kept running: enough for the services' `dr.standbyReplicas` (the warm standby)."""
    max: Annotated[int, Strict(), Field(ge=1, le=100)]
    """Most nodes cluster-autoscaler may grow the group to after a failover."""

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        """An EC2 type of the DR fleet's list."""
        if value not in DR_INSTANCE_TYPES:
            raise ValueError(f"unknown instance type {value!r}; allowed: {', '.join(sorted(DR_INSTANCE_TYPES))}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> NodeGroupSettings:
        """min <= max."""
        if self.min > self.max:
            raise RuleError([("min", f"must be <= max; got min={self.min}, max={self.max}")])
        return self


def _unique_pools(value: tuple[NodeGroupSettings, ...]) -> tuple[NodeGroupSettings, ...]:
    """One node group per pool."""
    pools = [group.pool for group in value]
    repeated = sorted({p for p in pools if pools.count(p) > 1})
    if repeated:
        raise ValueError(f"one node group per pool; repeated: {', '.join(repeated)}")
    return value


class FleetSettings(SettingsModel):
    """Settings the whole fleet shares (required when `sophia:services` is not empty)."""

    namespace: str = "sophia-apps"
    """Namespace the services run in; must be one of `kubernetes.clientNamespaces` (they reach the stores)."""
    gateway: GatewaySettings
    """The public Gateway."""
    tracing: TracingSettings = TracingSettings()
    """Trace collection and storage."""
    prometheus_url: str | None = None
    """Prometheus the scaling triggers query; unset: the stack's kube-prometheus-stack. Required when
    `sophia:operators.prometheusStack` is `existing` (the cluster's Prometheus)."""
    node_groups: Annotated[tuple[NodeGroupSettings, ...], Field(max_length=16), AfterValidator(_unique_pools)] = ()
    """The DR region only: an EKS node group per pool the services run on (the primary's pools are Lambda's)."""

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        """http(s)://host[:port][/path]."""
        if value is not None and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?", value):
            raise ValueError(f"must be http(s)://host[:port][/path], got {value!r}")
        return value

    @field_validator("namespace")
    @classmethod
    def _label(cls, value: str) -> str:
        """A DNS label."""
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
            raise ValueError(f"must be a DNS label (lowercase letters, digits, dashes; at most 63), got {value!r}")
        return value


def kubernetes_minor(version: str) -> int:
    """'1.33' -> 33."""
    return int(version.split(".")[1])


def fleet_problems(
    services: tuple[ServiceSettings, ...],
    fleet: FleetSettings | None,
    pools: Mapping[str, InstanceShape],
    *,
    version: tuple[str, str] | None,
    client_namespaces: tuple[str, ...] | None,
) -> list[tuple[str, str]]:
    """The rules across the fleet and the rest of the stack, as (key relative to the stack, message):
    `fleet` is set; each service's pools exist and one replica fits a node of each; the cluster is new
    enough for the fleet's operators (`version` is (its config key, its value)); the fleet's namespace
    may reach the stores (`client_namespaces`)."""
    if not services:
        return []
    problems: list[tuple[str, str]] = []
    if fleet is None:
        problems.append(("fleet", "is required when services is not empty (the gateway's host names)"))
    if version is not None and kubernetes_minor(version[1]) < FLEET_MIN_KUBERNETES_MINOR:
        problems.append(
            (
                version[0],
                f"must be 1.{FLEET_MIN_KUBERNETES_MINOR} or newer for the service fleet (KEDA 2.20 supports "
                f"1.33-1.35, Envoy Gateway 1.9 1.33-1.36); got {version[1]}",
            )
        )
    if fleet is not None and client_namespaces is not None and fleet.namespace not in client_namespaces:
        problems.append(
            (
                "fleet.namespace",
                f"must be one of kubernetes.clientNamespaces ({', '.join(client_namespaces)}) so the services "
                f"reach the data stores; got {fleet.namespace}",
            )
        )
    names = {service.name for service in services}
    health = fleet.gateway.health_service if fleet is not None else None
    if health is not None and health not in names:
        problems.append(("fleet.gateway.healthService", f"names an unknown service {health!r}"))
    gateway_pool = fleet.gateway.pool if fleet is not None else None
    if gateway_pool is not None and gateway_pool not in pools:
        problems.append(
            ("fleet.gateway.pool", f"names an unknown GPU pool {gateway_pool!r}; pools: {', '.join(sorted(pools))}")
        )
    for index, service in enumerate(services):
        for name in service.pool:
            shape = pools.get(name)
            if shape is None:
                known = ", ".join(sorted(pools)) or "none"
                problems.append((f"services.{index}.pool", f"names an unknown GPU pool {name!r}; pools: {known}"))
                continue
            problems += _fits(index, service, name, shape)
    return problems


def _fits(index: int, service: ServiceSettings, pool: str, shape: InstanceShape) -> list[tuple[str, str]]:
    """One replica fits on one node of the pool (requests cannot span nodes)."""
    resources = service.resources
    key = f"services.{index}.resources"
    problems = []
    if resources.gpus > shape.gpus:
        problems.append((f"{key}.gpus", f"{resources.gpus} GPUs per replica; a {pool} node has {shape.gpus}"))
    if resources.cpu_millis > shape.vcpus * 1000:
        problems.append((f"{key}.cpu", f"{resources.cpu} per replica; a {pool} node has {shape.vcpus} CPUs"))
    if resources.memory_mib > shape.memory_gib * 1024:
        problems.append((f"{key}.memory", f"{resources.memory} per replica; a {pool} node has {shape.memory_gib}Gi"))
    return problems


class InstanceShape(Protocol):
    """What a node of a pool offers (a catalog instance type fits)."""

    @property
    def gpus(self) -> int: ...

    @property
    def vcpus(self) -> int: ...

    @property
    def memory_gib(self) -> int: ...
