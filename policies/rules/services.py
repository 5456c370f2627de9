"""The service fleet's rules over the normalized workload model (`policies.model.workloads`): a
service's containers set their resources and probes, run pinned images as non-root off the host
network, and the GPUs every workload may hold at its most replicas fit the pools it may run on.

A service is any object the model says runs a pod (every built-in workload kind in any version, its
`*Patch`, a custom resource with a pod template) labelled `sophia.ai/service` on itself or on its
pod template, or placed in one of the fleet's namespaces (`sophia-pack-stack-config.
serviceNamespaces`): a workload in the fleet's namespace is a service with or without the label. A
patch is judged on the fields it sets. A value the engine does not know yet is reported for the
resource (and container) it belongs to; the others are still judged.

The GPU rule is not limited to services: every workload that requests `nvidia.com/gpu` counts, at
the most replicas it can reach (a KEDA ScaledObject's or an HPA's maximum over the replicas it
sets, a Job's parallelism, a ScaledJob's maximum runs), in every pool its node selector or
required node affinity on `sophia.ai/pool` allows. A GPU workload pinned to no pool, a DaemonSet
(one pod per node, however many nodes) and a CronJob whose runs may overlap without bound cannot
be fitted and are violations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import Severity

from policies.common import Category, Ctx, PackSettings, Rule
from policies.model.subject import StackView, Subject
from policies.model.values import Undetermined, Unknown, dig, mapping, need, number, text
from policies.model.workloads import Container, PodSpec

SERVICE_LABEL = "sophia.ai/service"
POOL_LABEL = "sophia.ai/pool"
GPU = "nvidia.com/gpu"
PROBES = ("readinessProbe", "livenessProbe")
# KEDA's defaults (keda.sh/v1alpha1): a ScaledObject or ScaledJob without maxReplicaCount scales to 100.
KEDA_DEFAULT_MAX = 100.0
SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
# The same rule as sophia:services[].image (settings/services.py): a digest, or a version tag.
_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
_VERSION_TAG = re.compile(r"^v?\d+(\.\d+){1,3}([-+][0-9A-Za-z.-]+)?$")


def image_is_pinned(image: str) -> bool:
    """`repo@sha256:<digest>` or `repo:<version tag>`: never latest, a branch or no tag."""
    if _DIGEST.fullmatch(image):
        return True
    repository, _, tag = image.rpartition(":")
    return bool(repository) and "/" not in tag and _VERSION_TAG.fullmatch(tag) is not None


def is_service(subject: Subject, spec: PodSpec, settings: PackSettings) -> bool:
    """Labelled a service (on the object or its pod template) or in a service namespace; raises
    `Undetermined` when an unknown value decides it."""
    unknown: Unknown | None = None
    for labels in (subject.labels, spec.labels):
        if isinstance(labels, Unknown):
            unknown = labels
        elif SERVICE_LABEL in labels:
            return True
    if settings.service_namespaces:
        namespace = subject.namespace
        if isinstance(namespace, Unknown):
            unknown = unknown or namespace
        elif namespace in settings.service_namespaces:
            return True
    if unknown is not None:
        raise Undetermined(unknown.where)
    return False


def _is_workload(subject: Subject) -> bool:
    return subject.workload is not None


ServiceCheck = Callable[[PodSpec, Ctx], None]


def _services(check: ServiceCheck) -> Callable[[Subject, Ctx], None]:
    def judge(subject: Subject, ctx: Ctx) -> None:
        spec = need(subject.workload)
        assert spec is not None
        if is_service(subject, spec, ctx.settings):
            check(spec, ctx)

    return judge


def _containers(spec: PodSpec) -> tuple[Container, ...]:
    return need(spec.containers)


RESOURCES = Rule(
    "sophia-service-resources-set",
    "Every service container sets CPU and memory requests and limits, and limits the GPUs it requests.",
    Severity.MEDIUM,
    "Set sophia:services[].resources (the fleet renders requests equal to limits).",
    Category.SECURITY,
)


def _resources(spec: PodSpec, ctx: Ctx) -> None:
    for container in _containers(spec):
        if container.role == "ephemeral container":
            continue  # the API forbids resources on ephemeral containers
        with ctx.judging(container.label):
            resources = need(container.resources)
            requests, limits = mapping(resources.get("requests")), mapping(resources.get("limits"))
            missing = [
                f"{kind}.{what}"
                for kind, values in (("requests", requests), ("limits", limits))
                for what in ("cpu", "memory")
                if not values.get(what)
            ]
            if missing and not spec.partial:
                ctx.violation(f"{container.label} lacks {', '.join(missing)}.")
            # Requests of an extended resource default to its limits; requests alone are not a limit.
            requested, limited = requests.get(GPU), limits.get(GPU)
            if requested is not None and number(requested) != number(limited):
                ctx.violation(f"{container.label} requests {requested} GPUs but limits {limited or 'none'}.")


PROBES_SET = Rule(
    "sophia-service-probes-set",
    "Every service container has a readiness and a liveness probe (the gateway and rollouts rely on them).",
    Severity.MEDIUM,
    "Set sophia:services[].healthPath; the fleet renders startup, readiness and liveness probes on it.",
    Category.SECURITY,
)


def _probes(spec: PodSpec, ctx: Ctx) -> None:
    if spec.partial:
        return  # a patch leaves the live object's probes as they are
    for container in _containers(spec):
        if container.role != "container":
            continue  # init containers finish (or are sidecars); ephemeral ones cannot have probes
        with ctx.judging(container.label):
            present = need(container.probes)
            for probe in PROBES:
                if probe not in present:
                    ctx.violation(f"{container.label} has no {probe}.")


IMAGE = Rule(
    "sophia-service-image-pinned",
    "Service images are pinned by digest or an immutable version tag (never latest, a branch or no tag).",
    Severity.HIGH,
    "Use repo@sha256:<digest> or repo:<version> such as 1.4.2 in sophia:services[].image and next.image.",
    Category.SECURITY,
)


def _image(spec: PodSpec, ctx: Ctx) -> None:
    for container in _containers(spec):
        with ctx.judging(container.label):
            image = need(container.image)
            if image is None and spec.partial:
                continue
            if not image_is_pinned(image or ""):
                ctx.violation(f"{container.label} image {image!r} is not pinned by digest or version tag.")


NON_ROOT = Rule(
    "sophia-service-non-root",
    "Service pods run as non-root (runAsNonRoot, never UID 0) and never on the host network.",
    Severity.HIGH,
    "Keep the fleet's restricted security context (runAsNonRoot, a non-zero UID); remove hostNetwork.",
    Category.SECURITY,
)


def _non_root(spec: PodSpec, ctx: Ctx) -> None:
    with ctx.judging("hostNetwork"):
        if need(spec.host_network) is True:
            ctx.violation("the pod uses the host network.")
    for container in _containers(spec):
        with ctx.judging(container.label):
            non_root, user = need(container.run_as_non_root), need(container.run_as_user)
            if user == 0 or non_root is False or (non_root is not True and not spec.partial):
                ctx.violation(f"{container.label} may run as root.")


# -- GPU capacity -----------------------------------------------------------------------------

GPU_CAPACITY = Rule(
    "sophia-service-gpu-capacity",
    "The GPUs every workload requests at its most replicas fit each pool's GPUs at its max size; a GPU "
    "workload must be pinned to a pool and bounded.",
    Severity.HIGH,
    "Lower sophia:services[].replicas.max or resources.gpus, or raise the pool's max (and poolGpus here); pin "
    "GPU workloads to a pool (nodeSelector sophia.ai/pool) and bound their replicas.",
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


class Unbounded(Exception):  # noqa: N818 - a verdict, not an error
    """A workload whose GPU demand has no upper bound the pack can see."""


@dataclass(frozen=True)
class Demand:
    name: str
    gpus_per_pod: float
    replicas: float
    pools: frozenset[str]

    @property
    def gpus(self) -> float:
        return self.gpus_per_pod * self.replicas


def _container_gpus(container: Container) -> float:
    resources = need(container.resources)
    amounts = (number(mapping(resources.get(kind)).get(GPU)) for kind in ("requests", "limits"))
    return max((a for a in amounts if a is not None), default=0.0)


def pod_gpus(spec: PodSpec) -> float:
    """GPUs one pod holds, as the scheduler counts them: its containers and sidecars together, or an
    init container (with the sidecars started before it) when that needs more."""
    running = sidecars = peak_init = 0.0
    for container in _containers(spec):
        if container.role == "ephemeral container":
            continue
        gpus = _container_gpus(container)
        if container.role == "container":
            running += gpus
        elif need(container.restart_policy) == "Always":
            sidecars += gpus
        else:
            peak_init = max(peak_init, sidecars + gpus)
    return max(running + sidecars, peak_init)


ScalerIndex = Mapping[tuple[str, str, str], float]
"""(namespace, kind, name) of a scaled object -> the most replicas its scalers allow."""


def _scalers(view: StackView, ctx: Ctx) -> dict[tuple[str, str, str], float]:
    """Every KEDA ScaledObject's and HPA's target and maximum (a target scaled twice: the larger)."""
    found: dict[tuple[str, str, str], float] = {}

    def index(subject: Subject) -> None:
        spec = mapping(subject.get("spec"))
        target = mapping(spec.get("scaleTargetRef"))
        if subject.kind == "ScaledObject":
            kind = text(target.get("kind")) or "Deployment"
            most = number(spec.get("maxReplicaCount"))
            most = KEDA_DEFAULT_MAX if most is None else most
        else:
            kind = text(target.get("kind")) or ""
            most = number(spec.get("maxReplicas")) or 0.0
        key = (need(subject.namespace), kind, str(target.get("name")))
        found[key] = max(found.get(key, 0.0), most)

    ctx.each([s for s in view.custom if s.kind in ("ScaledObject", "HorizontalPodAutoscaler")], index)
    return found


def _replicas(value: Any, default: float) -> float:
    found = number(value)
    return default if found is None else found


def most_replicas(subject: Subject, spec: PodSpec, scalers: ScalerIndex) -> float:
    """The most pods the object may run at once; raises `Unbounded` when nothing bounds them."""
    props = subject.props
    kind = spec.kind
    if kind == "DaemonSet":
        raise Unbounded("is a DaemonSet: it holds GPUs on every node of its pools, however many there are")
    if kind == "Pod":
        return 1.0
    if kind == "PodTemplate":
        return 0.0  # a template runs nothing by itself
    if kind == "Job":
        return _replicas(dig(props, "spec", "parallelism"), 1.0)
    if kind == "CronJob":
        policy = text(dig(props, "spec", "concurrencyPolicy")) or "Allow"
        if policy == "Allow":
            raise Unbounded("is a CronJob whose runs may overlap without bound (concurrencyPolicy Allow)")
        return _replicas(dig(props, "spec", "jobTemplate", "spec", "parallelism"), 1.0)
    if kind == "ScaledJob":
        runs = _replicas(dig(props, "spec", "maxReplicaCount"), KEDA_DEFAULT_MAX)
        return runs * _replicas(dig(props, "spec", "jobTargetRef", "parallelism"), 1.0)
    # Deployments and the other scalable kinds, and custom resources with a pod template: the
    # replicas they set, or what a scaler may raise them to.
    replicas = _replicas(dig(props, "spec", "replicas"), 1.0)
    name = need(subject.metadata_name)
    key = (need(subject.namespace), kind, str(name))
    return max(replicas, scalers.get(key, 0.0))


def _demand(subject: Subject, scalers: ScalerIndex) -> Demand | None:
    spec = need(subject.workload)
    assert spec is not None
    per_pod = pod_gpus(spec)
    if not per_pod:
        return None
    pools = need(spec.node_label_values(POOL_LABEL))
    if pools is None:
        raise Unbounded(f"is pinned to no pool (nodeSelector or required node affinity on {POOL_LABEL})")
    replicas = most_replicas(subject, spec, scalers)
    return Demand(subject.name, per_pod, replicas, pools)


def _gpu_capacity(view: StackView, ctx: Ctx) -> None:
    capacity = {str(pool): number(gpus) or 0.0 for pool, gpus in mapping(ctx.config["poolGpus"]).items()}
    scalers = _scalers(view, ctx)
    demands: list[Demand] = []

    def collect(subject: Subject) -> None:
        try:
            found = _demand(subject, scalers)
        except Unbounded as reason:
            ctx.violation(f"{subject.name} requests GPUs but {reason}.", subject.urn)
            return
        if found is not None:
            demands.append(found)

    ctx.each([s for s in view.custom if s.workload is not None], collect)
    for pool in sorted({p for d in demands for p in d.pools}):
        # Each workload counts in full in every pool it may run on: its worst case for that pool.
        members = [d for d in demands if pool in d.pools]
        total = sum(d.gpus for d in members)
        shares = ", ".join(f"{d.name} {d.gpus_per_pod:g} x {d.replicas:g}" for d in members)
        if pool not in capacity:
            ctx.violation(f"workloads request {total:g} GPUs on pool {pool} ({shares}), which has no GPU capacity.")
        elif total > capacity[pool]:
            ctx.violation(
                f"workloads request {total:g} GPUs on pool {pool} at their most replicas ({shares}); the pool "
                f"holds {capacity[pool]:g} at its max."
            )


POLICIES = [
    RESOURCES.resource(_is_workload, _services(_resources)),
    PROBES_SET.resource(_is_workload, _services(_probes)),
    IMAGE.resource(_is_workload, _services(_image)),
    NON_ROOT.resource(_is_workload, _services(_non_root)),
    GPU_CAPACITY.stack(_gpu_capacity),
]
