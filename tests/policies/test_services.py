"""The service fleet's rules, on objects written with pulumi-kubernetes's own classes: a service is judged
in every kind that runs a pod (and its patch, and a custom resource with a pod template), whether the
service label is on the object, on its pod template, or it sits in a service namespace; a compliant
service passes and each broken property fails; the GPUs every workload may hold at its most replicas fit
each pool, whatever kind or scaler carries them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from policies.catalog import load_lambda_catalog
from policies.rules.services import image_is_pinned
from settings import parse_settings
from settings.services import DR_INSTANCE_TYPES
from tests.helpers import stack_config
from tests.policies.helpers import DELETE, STACK, k8s, messages, program, skipped, with_
from tools.policy_eval import POLICY_CONFIG_DIR, load_policy_config

GPU = "nvidia.com/gpu"
SECURE: dict[str, Any] = {
    "allow_privilege_escalation": False,
    "capabilities": {"drop": ["ALL"]},
    "read_only_root_filesystem": True,
    "run_as_non_root": True,
    "run_as_user": 10001,
}
PROBE = {"http_get": {"path": "/healthz", "port": "http"}}
AMOUNTS = {"cpu": "8", "memory": "64Gi", GPU: "1"}
CONTAINER: dict[str, Any] = {
    "name": "inference",
    "image": "ghcr.io/sophia-ai/inference:3.2.1",
    "security_context": SECURE,
    "resources": {"requests": AMOUNTS, "limits": AMOUNTS},
    "readiness_probe": PROBE,
    "liveness_probe": PROBE,
}
POD: dict[str, Any] = {
    "security_context": {"run_as_non_root": True, "run_as_user": 10001, "seccomp_profile": {"type": "RuntimeDefault"}},
    "node_selector": {"sophia.ai/pool": "ai-core"},
    "containers": [CONTAINER],
}
SERVICE = {"sophia.ai/service": "inference"}
APP = {"app": "inference"}
NAMESPACE = "sophia-apps"
SERVICE_NAMESPACES = {
    "sophia-pack-stack-config": {"stack": STACK, "environment": "prod", "serviceNamespaces": [NAMESPACE]}
}
CAPACITY = "sophia-service-gpu-capacity"
RESOURCE_POLICIES = [
    "sophia-service-image-pinned",
    "sophia-service-non-root",
    "sophia-service-probes-set",
    "sophia-service-resources-set",
]


def metadata(labels: dict[str, str] | None = None, name: str = "inference", namespace: str = NAMESPACE) -> Any:
    return {"name": name, "namespace": namespace, "labels": labels}


def template(pod: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": {**APP, **(labels or {})}}, "spec": pod}


def camel(value: Any) -> Any:
    """A custom resource's spec is passed through untyped: write it as the API does."""
    if isinstance(value, dict):
        return {_camel(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _camel(key: str) -> str:
    if "/" in key or "." in key:
        return key  # a label or resource name
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


Build = Callable[..., Any]
# Every object that runs a pod, from a pod spec: `meta` labels the object, `pod_labels` its pod template.
KINDS: dict[str, Build] = {
    "Deployment": lambda pod, meta, pod_labels=None, **spec: k8s.apps.v1.Deployment(
        "w", metadata=meta, spec={"selector": {"match_labels": APP}, "template": template(pod, pod_labels), **spec}
    ),
    "StatefulSet": lambda pod, meta, pod_labels=None, **spec: k8s.apps.v1.StatefulSet(
        "w",
        metadata=meta,
        spec={"service_name": "x", "selector": {"match_labels": APP}, "template": template(pod, pod_labels), **spec},
    ),
    "DaemonSet": lambda pod, meta, pod_labels=None, **spec: k8s.apps.v1.DaemonSet(
        "w", metadata=meta, spec={"selector": {"match_labels": APP}, "template": template(pod, pod_labels), **spec}
    ),
    "ReplicaSet": lambda pod, meta, pod_labels=None, **spec: k8s.apps.v1.ReplicaSet(
        "w", metadata=meta, spec={"selector": {"match_labels": APP}, "template": template(pod, pod_labels), **spec}
    ),
    "Job": lambda pod, meta, pod_labels=None, **spec: k8s.batch.v1.Job(
        "w", metadata=meta, spec={"template": template(with_(pod, restart_policy="Never"), pod_labels), **spec}
    ),
    "CronJob": lambda pod, meta, pod_labels=None, **spec: k8s.batch.v1.CronJob(
        "w",
        metadata=meta,
        spec={
            "schedule": "0 3 * * *",
            "concurrency_policy": "Forbid",
            "job_template": {"spec": {"template": template(with_(pod, restart_policy="Never"), pod_labels)}},
            **spec,
        },
    ),
    "Pod": lambda pod, meta, pod_labels=None, **spec: k8s.core.v1.Pod(
        "w", metadata={**meta, "labels": {**(meta.get("labels") or {}), **(pod_labels or {})}}, spec=pod
    ),
    "Rollout (custom resource)": lambda pod, meta, pod_labels=None, **spec: k8s.apiextensions.CustomResource(
        "w",
        api_version="argoproj.io/v1alpha1",
        kind="Rollout",
        metadata=meta,
        spec={"selector": {"matchLabels": APP}, "template": camel(template(pod, pod_labels)), **camel(spec)},
    ),
}


def pod_with(container: dict[str, Any] | None = None, **pod_changes: Any) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    if container is not None:
        pod["containers"] = [container]
    return with_(pod, **pod_changes)


def secure(**changes: Any) -> dict[str, Any]:
    return with_(CONTAINER, security_context=with_(SECURE, **changes))


def service(kind: str, pod: dict[str, Any]) -> Any:
    return program(lambda: KINDS[kind](pod, metadata(SERVICE)))


BREAKS: list[tuple[str, dict[str, Any], str]] = [
    (
        "sophia-service-resources-set",
        pod_with(with_(CONTAINER, resources={"requests": {"cpu": "8", "memory": "64Gi"}})),
        "container inference lacks limits.cpu, limits.memory.",
    ),
    (
        # Requests of an extended resource alone are no limit (the API defaults requests to limits only).
        "sophia-service-resources-set",
        pod_with(with_(CONTAINER, resources={"requests": AMOUNTS, "limits": {"cpu": "8", "memory": "64Gi"}})),
        "container inference requests 1 GPUs but limits none.",
    ),
    (
        "sophia-service-resources-set",
        pod_with(with_(CONTAINER, resources={"requests": {**AMOUNTS, GPU: "2"}, "limits": AMOUNTS})),
        "container inference requests 2 GPUs but limits 1.",
    ),
    (
        "sophia-service-probes-set",
        pod_with(with_(CONTAINER, readiness_probe=DELETE)),
        "container inference has no readinessProbe.",
    ),
    (
        "sophia-service-probes-set",
        pod_with(with_(CONTAINER, liveness_probe=DELETE)),
        "container inference has no livenessProbe.",
    ),
    (
        "sophia-service-image-pinned",
        pod_with(with_(CONTAINER, image="ghcr.io/sophia-ai/inference:latest")),
        "container inference image 'ghcr.io/sophia-ai/inference:latest' is not pinned by digest or version tag.",
    ),
    (
        "sophia-service-image-pinned",
        pod_with(with_(CONTAINER, image="ghcr.io/sophia-ai/inference:main")),
        "container inference image 'ghcr.io/sophia-ai/inference:main' is not pinned by digest or version tag.",
    ),
    ("sophia-service-non-root", pod_with(host_network=True), "the pod uses the host network."),
    ("sophia-service-non-root", pod_with(secure(run_as_user=0)), "container inference may run as root."),
    (
        # A non-zero UID is not enough for a service: runAsNonRoot makes the kubelet refuse a root image.
        "sophia-service-non-root",
        pod_with(secure(run_as_non_root=DELETE), security_context={"run_as_user": 10001}),
        "container inference may run as root.",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", RESOURCE_POLICIES)
def test_a_compliant_service_passes_in_every_kind(kind: str, policy: str) -> None:
    run = service(kind, POD)
    assert messages(policy, run) == []
    assert skipped(policy, run) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("policy", "pod", "expected"), BREAKS, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BREAKS)])
def test_each_break_fails_in_every_kind(kind: str, policy: str, pod: dict[str, Any], expected: str) -> None:
    assert messages(policy, service(kind, pod)) == [expected]


def test_init_sidecar_and_ephemeral_containers_are_judged_as_their_role_requires() -> None:
    sidecar = with_(CONTAINER, name="proxy", restart_policy="Always", readiness_probe=DELETE, liveness_probe=DELETE)
    init = with_(CONTAINER, name="fetch", image="busybox", readiness_probe=DELETE, liveness_probe=DELETE)
    pod = pod_with(init_containers=[sidecar, init])
    run = service("Deployment", pod)
    # Probes are asked of the long-running containers; images and users of every container.
    assert messages("sophia-service-probes-set", run) == []
    assert messages("sophia-service-image-pinned", run) == [
        "init container fetch image 'busybox' is not pinned by digest or version tag."
    ]
    debug = with_(CONTAINER, name="debug", resources=DELETE, security_context=with_(SECURE, run_as_user=0))
    run = service("Deployment", pod_with(ephemeral_containers=[debug]))
    assert messages("sophia-service-resources-set", run) == []  # the API forbids resources on them
    assert messages("sophia-service-non-root", run) == ["ephemeral container debug may run as root."]


@pytest.mark.parametrize(
    ("meta", "pod_labels", "also", "judged"),
    [
        (metadata(SERVICE), None, None, True),
        (metadata(APP), SERVICE, None, True),
        (metadata(APP), None, SERVICE_NAMESPACES, True),
        (metadata(APP), None, None, False),
        (metadata(APP, namespace="tools"), None, SERVICE_NAMESPACES, False),
    ],
    ids=["object-label", "pod-template-label", "service-namespace", "no-service", "other-namespace"],
)
def test_a_service_is_known_by_its_label_or_namespace(
    meta: dict[str, Any], pod_labels: dict[str, str] | None, also: Any, judged: bool
) -> None:
    pod = pod_with(with_(CONTAINER, image="ghcr.io/sophia-ai/inference:main"))
    for kind in ("Deployment", "StatefulSet", "Rollout (custom resource)"):
        build = KINDS[kind]
        run = program(lambda: build(pod, meta, pod_labels))  # noqa: B023 - run before the next iteration
        found = messages("sophia-service-image-pinned", run, also=also)
        assert bool(found) is judged, (kind, found)


def patch(meta: dict[str, Any], spec: dict[str, Any]) -> Any:
    return program(lambda: k8s.apps.v1.DeploymentPatch("w", metadata=meta, spec=spec))


def test_a_patch_is_judged_on_what_it_sets() -> None:
    image_only = {"template": {"spec": {"containers": [{"name": "inference", "image": "ghcr.io/x/inference:3.2.2"}]}}}
    for policy in RESOURCE_POLICIES:
        assert messages(policy, patch(metadata(SERVICE), image_only)) == [], policy
    # A patch of a live service in the fleet's namespace is a service's, label or not.
    latest = {"template": {"spec": {"containers": [{"name": "inference", "image": "ghcr.io/x/inference:latest"}]}}}
    assert messages("sophia-service-image-pinned", patch(metadata(), latest), also=SERVICE_NAMESPACES) == [
        "container inference image 'ghcr.io/x/inference:latest' is not pinned by digest or version tag."
    ]
    root = {"template": {"spec": {"containers": [{"name": "inference", "security_context": {"run_as_user": 0}}]}}}
    assert messages("sophia-service-non-root", patch(metadata(SERVICE), root)) == [
        "container inference may run as root."
    ]
    gpus = {"requests": {GPU: "2"}, "limits": {GPU: "1"}}
    mismatch = {"template": {"spec": {"containers": [{"name": "inference", "resources": gpus}]}}}
    assert messages("sophia-service-resources-set", patch(metadata(SERVICE), mismatch)) == [
        "container inference requests 2 GPUs but limits 1."
    ]


def test_an_unknown_value_is_reported_and_the_other_containers_judged() -> None:
    def build() -> None:
        image = k8s.core.v1.Namespace("ns").metadata.apply(lambda _: "ghcr.io/sophia-ai/inference:3.2.1")
        pending = with_(CONTAINER, name="pending", image=image)
        latest = with_(CONTAINER, name="latest", image="ghcr.io/sophia-ai/inference:latest")
        KINDS["Deployment"](pod_with(containers=[pending, latest]), metadata(SERVICE))

    run = program(build, first_preview=True)
    policy = "sophia-service-image-pinned"
    assert messages(policy, run) == [
        "container latest image 'ghcr.io/sophia-ai/inference:latest' is not pinned by digest or version tag."
    ]
    [reason] = skipped(policy, run)
    assert "container pending" in reason


def test_unknown_labels_leave_the_workload_unjudged_not_passed() -> None:
    def build() -> None:
        label = k8s.core.v1.Namespace("ns").metadata.apply(lambda _: "inference")
        meta = metadata({"app": label}, namespace=NAMESPACE)
        KINDS["Deployment"](pod_with(with_(CONTAINER, image="nginx")), {**meta, "labels": label})

    run = program(build, first_preview=True)
    assert messages("sophia-service-image-pinned", run) == []
    assert len(skipped("sophia-service-image-pinned", run)) == 1


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/sophia-ai/x:1.4.2", True),
        ("registry.local:5000/x:v2.0.1-rc.1", True),
        ("x@sha256:" + "a" * 64, True),
        ("ghcr.io/sophia-ai/x:latest", False),
        ("ghcr.io/sophia-ai/x:main", False),
        ("registry.local:5000/x", False),
    ],
)
def test_the_pack_pins_images_as_the_settings_do(image: str, pinned: bool) -> None:
    assert image_is_pinned(image) is pinned


# -- GPU capacity ------------------------------------------------------------------------------

POOLS = {"poolGpus": {"ai-core": 10, "data": 6}}


def scaled_object(target: str, kind: str = "Deployment", **spec: Any) -> Any:
    return k8s.apiextensions.CustomResource(
        f"{target}-scaler",
        api_version="keda.sh/v1alpha1",
        kind="ScaledObject",
        metadata={"name": target, "namespace": NAMESPACE},
        spec={"scaleTargetRef": {"name": target, "kind": kind}, "triggers": [], **camel(spec)},
    )


def gpu_pod(gpus: str = "1", pool: str | None = "ai-core", **changes: Any) -> dict[str, Any]:
    amounts = {**AMOUNTS, GPU: gpus}
    pod = pod_with(with_(CONTAINER, resources={"requests": amounts, "limits": amounts}), **changes)
    if pool is None:
        del pod["node_selector"]
    else:
        pod["node_selector"] = {"sophia.ai/pool": pool}
    return pod


def capacity(build: Callable[[], object], config: dict[str, Any] | None = None) -> list[str]:
    return messages(CAPACITY, program(build), config or POOLS)


def test_the_gpus_at_the_most_replicas_must_fit_the_pool() -> None:
    def fleet(most: float) -> Callable[[], None]:
        def build() -> None:
            KINDS["Deployment"](gpu_pod(), metadata(SERVICE))
            scaled_object("inference", max_replica_count=most)

        return build

    assert capacity(fleet(10)) == []
    assert capacity(fleet(11)) == [
        "workloads request 11 GPUs on pool ai-core at their most replicas (w 1 x 11); the pool holds 10 at its max."
    ]
    assert capacity(fleet(4), {"poolGpus": {"data": 6}}) == [
        "workloads request 4 GPUs on pool ai-core (w 1 x 4), which has no GPU capacity."
    ]


def hpa(target: str, kind: str, most: int) -> Any:
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{target}-hpa",
        metadata={"name": target, "namespace": NAMESPACE},
        spec={"scale_target_ref": {"api_version": "apps/v1", "kind": kind, "name": target}, "max_replicas": most},
    )


# Each way a workload may hold GPUs, and what it holds at most (GPUs per pod x pods).
DEMANDS: list[tuple[str, Callable[[], object], str]] = [
    ("replicas", lambda: KINDS["Deployment"](gpu_pod(), metadata(), replicas=11), "w 1 x 11"),
    (
        "keda-default-max",  # a ScaledObject without maxReplicaCount scales to 100
        lambda: (KINDS["Deployment"](gpu_pod(), metadata()), scaled_object("inference")),
        "w 1 x 100",
    ),
    (
        "hpa",
        lambda: (KINDS["StatefulSet"](gpu_pod(), metadata()), hpa("inference", "StatefulSet", 12)),
        "w 1 x 12",
    ),
    (
        "scaled-custom-resource",
        lambda: (
            KINDS["Rollout (custom resource)"](gpu_pod("2"), metadata()),
            scaled_object("inference", kind="Rollout", max_replica_count=6),
        ),
        "w 2 x 6",
    ),
    ("job-parallelism", lambda: KINDS["Job"](gpu_pod(), metadata(), parallelism=11), "w 1 x 11"),
    (
        "cronjob-parallelism",
        lambda: KINDS["CronJob"](
            gpu_pod(),
            metadata(),
            job_template={"spec": {"parallelism": 11, "template": template(with_(gpu_pod(), restart_policy="Never"))}},
        ),
        "w 1 x 11",
    ),
    (
        "scaled-job",
        lambda: k8s.apiextensions.CustomResource(
            "w",
            api_version="keda.sh/v1alpha1",
            kind="ScaledJob",
            metadata=metadata(),
            spec={"jobTargetRef": {"parallelism": 2, "template": camel(template(gpu_pod()))}, "triggers": []},
        ),
        "w 1 x 200",
    ),
    (
        "init-container",  # the scheduler counts the larger of the init container and the containers
        lambda: KINDS["Deployment"](
            gpu_pod(init_containers=[with_(CONTAINER, name="warm", resources={"limits": {**AMOUNTS, GPU: "3"}})]),
            metadata(),
            replicas=4,
        ),
        "w 3 x 4",
    ),
    (
        "sidecar",  # a sidecar's GPUs add to the containers'
        lambda: KINDS["Deployment"](
            gpu_pod(init_containers=[with_(CONTAINER, name="side", restart_policy="Always")]), metadata(), replicas=6
        ),
        "w 2 x 6",
    ),
]


@pytest.mark.parametrize(("build", "held"), [(b, h) for _, b, h in DEMANDS], ids=[i for i, _, _ in DEMANDS])
def test_every_way_to_hold_gpus_counts(build: Callable[[], object], held: str) -> None:
    found = capacity(build)
    per_pod, replicas = held.removeprefix("w ").split(" x ")
    total = float(per_pod) * float(replicas)
    assert found == [
        f"workloads request {total:g} GPUs on pool ai-core at their most replicas ({held}); the pool holds 10 at its "
        "max."
    ]


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: KINDS["Deployment"](gpu_pod(pool=None), metadata()), "is pinned to no pool"),
        (lambda: KINDS["DaemonSet"](gpu_pod(), metadata()), "is a DaemonSet"),
        (
            lambda: KINDS["CronJob"](gpu_pod(), metadata(), concurrency_policy="Allow"),
            "is a CronJob whose runs may overlap without bound",
        ),
    ],
    ids=["unpinned", "daemonset", "cronjob-allow"],
)
def test_gpus_without_a_bound_are_a_violation(build: Callable[[], None], reason: str) -> None:
    [found] = capacity(build)
    assert found.startswith(f"w requests GPUs but {reason}")


def test_node_affinity_places_a_workload_in_each_pool_it_allows() -> None:
    term = {"match_expressions": [{"key": "sophia.ai/pool", "operator": "In", "values": ["ai-core", "data"]}]}
    affinity = {
        "node_affinity": {"required_during_scheduling_ignored_during_execution": {"node_selector_terms": [term]}}
    }

    def build() -> None:
        KINDS["Deployment"](gpu_pod(pool=None, affinity=affinity), metadata(), replicas=7)

    # At worst all seven pods land on either pool: 7 fit ai-core's 10, not data's 6.
    assert capacity(build) == [
        "workloads request 7 GPUs on pool data at their most replicas (w 1 x 7); the pool holds 6 at its max."
    ]


def test_an_unknown_gpu_count_is_reported_and_the_other_workloads_summed() -> None:
    def build() -> None:
        gpus = k8s.core.v1.Namespace("ns").metadata.apply(lambda _: "1")
        pending = {**AMOUNTS, GPU: gpus}
        # Built by hand: an Output cannot be deep-copied.
        pod = {**POD, "containers": [{**CONTAINER, "resources": {"requests": pending, "limits": pending}}]}
        k8s.apps.v1.Deployment(
            "pending",
            metadata=metadata(name="pending"),
            spec={"selector": {"match_labels": APP}, "template": template(pod)},
        )
        k8s.apps.v1.Deployment(
            "big",
            metadata=metadata(name="big"),
            spec={"replicas": 11, "selector": {"match_labels": APP}, "template": template(gpu_pod())},
        )

    run = program(build, first_preview=True)
    assert messages(CAPACITY, run, POOLS) == [
        "workloads request 11 GPUs on pool ai-core at their most replicas (big 1 x 11); the pool holds 10 at its max."
    ]
    [reason] = skipped(CAPACITY, run, POOLS)
    assert reason.startswith("pending:")


# -- The shipped stacks ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_each_stacks_pool_gpus_and_service_namespaces_are_its_settings(stack: str) -> None:
    """The policy config's GPUs per pool are the pools' max x GPUs per node, and its service namespaces
    the fleet's (a test, like the budget's); test_pack runs the shipped stacks through every policy."""
    settings = parse_settings(stack_config(stack))
    if stack == "dr":
        assert settings.fleet is not None
        expected = {g.pool: g.max * DR_INSTANCE_TYPES[g.instance_type].gpus for g in settings.fleet.node_groups}
    else:
        catalog = load_lambda_catalog()
        expected = {p.name: p.max * catalog.instance_type(p.instance_type).gpus for p in settings.gpu_pools}
    config = load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json")
    assert config[CAPACITY]["poolGpus"] == expected
    namespaces = [settings.fleet.namespace] if settings.fleet is not None else []
    assert config["sophia-pack-stack-config"].get("serviceNamespaces", []) == namespaces
