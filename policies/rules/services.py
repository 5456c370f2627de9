"""The service fleet's rules: each service's pods are hardened and pinned, and the fleet's GPU demand at
its most replicas fits the pools it runs on.

A service is a Deployment labelled `sophia.ai/service` (components/services/). The checks are pure
functions of the engine-shaped properties (`check_*`); the policies below only hand them the
resource or the stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policies.common import Category, Rule, config_of, resource_policy, stack_policy

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SERVICE_LABEL = "sophia.ai/service"
POOL_LABEL = "sophia.ai/pool"
GPU = "nvidia.com/gpu"
# The same rule as sophia:services[].image (settings/services.py): a digest, or a version tag.
_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
_VERSION_TAG = re.compile(r"^v?\d+(\.\d+){1,3}([-+][0-9A-Za-z.-]+)?$")


def is_service(props: Mapping[str, Any]) -> bool:
    return SERVICE_LABEL in ((props.get("metadata") or {}).get("labels") or {})


def _pod(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((props.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(props: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    pod = _pod(props)
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []


def image_is_pinned(image: str) -> bool:
    """`repo@sha256:<digest>` or `repo:<version tag>`: never latest, a branch or no tag."""
    if _DIGEST.fullmatch(image):
        return True
    repository, _, tag = image.rpartition(":")
    return bool(repository) and "/" not in tag and _VERSION_TAG.fullmatch(tag) is not None


def check_resources(props: Mapping[str, Any]) -> list[str]:
    """CPU and memory requests and limits on every container; GPUs, where requested, limited alike."""
    problems = []
    for container in _containers(props):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [
            f"{kind}.{what}"
            for kind, values in (("requests", requests), ("limits", limits))
            for what in ("cpu", "memory")
            if not values.get(what)
        ]
        if missing:
            problems.append(f"container {container.get('name')} lacks {', '.join(missing)}.")
        if str(requests.get(GPU, "0")) != str(limits.get(GPU, "0")):
            problems.append(
                f"container {container.get('name')} requests {requests.get(GPU)} GPUs but limits {limits.get(GPU)}."
            )
    return problems


def check_probes(props: Mapping[str, Any]) -> list[str]:
    """A readiness and a liveness probe on every (long-running) container."""
    return [
        f"container {container.get('name')} has no {probe}."
        for container in _pod(props).get("containers") or []
        for probe in ("readinessProbe", "livenessProbe")
        if not container.get(probe)
    ]


def check_image(props: Mapping[str, Any]) -> list[str]:
    return [
        f"container {container.get('name')} image {container.get('image')!r} is not pinned by digest or version tag."
        for container in _containers(props)
        if not image_is_pinned(str(container.get("image") or ""))
    ]


def check_non_root(props: Mapping[str, Any]) -> list[str]:
    """Non-root in every container (pod or container context), no host network."""
    pod = _pod(props)
    problems = ["the pod uses the host network."] if pod.get("hostNetwork") is True else []
    pod_context = pod.get("securityContext") or {}
    for container in _containers(props):
        context = {**pod_context, **(container.get("securityContext") or {})}
        if context.get("runAsNonRoot") is not True or context.get("runAsUser") in (0, 0.0):
            problems.append(f"container {container.get('name')} may run as root.")
    return problems


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def gpu_demand(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, float]:
    """Per pool, the GPUs the services would hold at their most replicas: each Deployment's GPUs per
    replica times its ScaledObject's `maxReplicaCount` (a Deployment no scaler governs counts once)."""
    items = list(resources)
    most = {
        (
            str((props.get("metadata") or {}).get("namespace")),
            str(((props.get("spec") or {}).get("scaleTargetRef") or {}).get("name")),
        ): _number((props.get("spec") or {}).get("maxReplicaCount", 1))
        for type_, props in items
        if type_ == SCALED_OBJECT
    }
    demand: dict[str, float] = {}
    for type_, props in items:
        if type_ != DEPLOYMENT or not is_service(props):
            continue
        pool = str((_pod(props).get("nodeSelector") or {}).get(POOL_LABEL, ""))
        per_replica = sum(
            _number(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0)) for c in _containers(props)
        )
        if not pool or not per_replica:
            continue
        metadata = props.get("metadata") or {}
        replicas = most.get((str(metadata.get("namespace")), str(metadata.get("name"))), 1.0)
        demand[pool] = demand.get(pool, 0.0) + per_replica * replicas
    return demand


def check_gpu_capacity(demand: Mapping[str, float], capacity: Mapping[str, Any]) -> list[str]:
    problems = []
    for pool, gpus in sorted(demand.items()):
        if pool not in capacity:
            problems.append(f"services request {gpus:g} GPUs on pool {pool}, which has no GPU capacity configured.")
        elif gpus > _number(capacity[pool]):
            problems.append(
                f"services request {gpus:g} GPUs on pool {pool} at their most replicas; the pool holds "
                f"{_number(capacity[pool]):g} at its max."
            )
    return problems


RESOURCES = Rule(
    "sophia-service-resources-set",
    "Every service container sets CPU and memory requests and limits, and limits the GPUs it requests.",
    Severity.MEDIUM,
    "Set sophia:services[].resources (the fleet renders requests equal to limits).",
    Category.SECURITY,
)
PROBES = Rule(
    "sophia-service-probes-set",
    "Every service container has a readiness and a liveness probe (the gateway and rollouts rely on them).",
    Severity.MEDIUM,
    "Set sophia:services[].healthPath; the fleet renders startup, readiness and liveness probes on it.",
    Category.SECURITY,
)
IMAGE = Rule(
    "sophia-service-image-pinned",
    "Service images are pinned by digest or an immutable version tag (never latest, a branch or no tag).",
    Severity.HIGH,
    "Use repo@sha256:<digest> or repo:<version> such as 1.4.2 in sophia:services[].image and next.image.",
    Category.SECURITY,
)
NON_ROOT = Rule(
    "sophia-service-non-root",
    "Service pods run as non-root and never on the host network.",
    Severity.HIGH,
    "Keep the fleet's restricted security context (runAsNonRoot, a non-zero UID); remove hostNetwork.",
    Category.SECURITY,
)
GPU_CAPACITY = Rule(
    "sophia-service-gpu-capacity",
    "The fleet's GPU requests at the services' most replicas fit each pool's GPUs at its max size.",
    Severity.HIGH,
    "Lower sophia:services[].replicas.max or resources.gpus, or raise the pool's max (and poolGpus here).",
    Category.BUDGET,
    config={
        "poolGpus": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0},
            "default": {},
            "description": "pool name -> GPUs the pool holds at its max size (nodes x GPUs per node)",
        }
    },
)


def _service_check(check: Any) -> Any:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if is_service(args.props):
            for message in check(args.props):
                report(message, None)

    return validate


def _gpu_capacity(args: StackValidationArgs, report: ReportViolation) -> None:
    demand = gpu_demand((r.resource_type, r.props) for r in args.resources)
    for message in check_gpu_capacity(demand, config_of(args, GPU_CAPACITY)["poolGpus"]):
        report(message, None)


POLICIES = [
    resource_policy(RESOURCES, [DEPLOYMENT], _service_check(check_resources)),
    resource_policy(PROBES, [DEPLOYMENT], _service_check(check_probes)),
    resource_policy(IMAGE, [DEPLOYMENT], _service_check(check_image)),
    resource_policy(NON_ROOT, [DEPLOYMENT], _service_check(check_non_root)),
    stack_policy(GPU_CAPACITY, _gpu_capacity),
]
