"""The service fleet's policies through the real analyzer path: a compliant service passes; each
broken property fails with its message; the GPU demand at the most replicas fits each pool."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from catalog import load_lambda_catalog
from policies.rules.services import image_is_pinned
from settings import parse_settings
from settings.services import DR_INSTANCE_TYPES
from tests.helpers import stack_config
from tests.policies.helpers import DELETE, changed, messages, res, run_of
from tools.harness import run_stack
from tools.policy_eval import POLICY_CONFIG_DIR, evaluate, load_policy_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PROBE = {"httpGet": {"path": "/healthz", "port": "http"}}
CONTAINER: dict[str, Any] = {
    "name": "inference",
    "image": "ghcr.io/sophia-ai/inference:3.2.1",
    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    "resources": {
        "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
    },
    "readinessProbe": PROBE,
    "livenessProbe": PROBE,
}
SERVICE: dict[str, Any] = {
    "metadata": {"name": "inference-ai-core", "namespace": "sophia-apps", "labels": {"sophia.ai/service": "inference"}},
    "spec": {
        "template": {
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001.0},
                "nodeSelector": {"sophia.ai/pool": "ai-core"},
                "containers": [CONTAINER],
            }
        }
    },
}
C = "spec.template.spec.containers.0"


def scaler(target: str, most: float) -> Any:
    spec = {"scaleTargetRef": {"name": target}, "maxReplicaCount": most}
    return res(
        SCALED_OBJECT, f"{target}-scaler", {"metadata": {"name": target, "namespace": "sophia-apps"}, "spec": spec}
    )


def service_run(inputs: dict[str, Any], most: float = 4.0) -> Any:
    return run_of(res(DEPLOYMENT, "inference-ai-core", inputs), scaler("inference-ai-core", most))


@pytest.mark.parametrize(
    "policy",
    [
        "sophia-service-resources-set",
        "sophia-service-probes-set",
        "sophia-service-image-pinned",
        "sophia-service-non-root",
        "sophia-service-gpu-capacity",
    ],
)
def test_a_compliant_service_passes(policy: str) -> None:
    assert messages(policy, service_run(SERVICE), {"poolGpus": {"ai-core": 10}} if "gpu" in policy else None) == []


@pytest.mark.parametrize(
    ("policy", "path", "value", "expected"),
    [
        (
            "sophia-service-resources-set",
            f"{C}.resources.limits",
            DELETE,
            [
                "container inference lacks limits.cpu, limits.memory.",
                "container inference requests 1 GPUs but limits None.",
            ],
        ),
        (
            "sophia-service-resources-set",
            f"{C}.resources.limits.nvidia.com/gpu",
            DELETE,
            "container inference requests 1 GPUs but limits None.",
        ),
        ("sophia-service-probes-set", f"{C}.readinessProbe", DELETE, "container inference has no readinessProbe."),
        ("sophia-service-probes-set", f"{C}.livenessProbe", DELETE, "container inference has no livenessProbe."),
        (
            "sophia-service-image-pinned",
            f"{C}.image",
            "ghcr.io/sophia-ai/inference:latest",
            "container inference image 'ghcr.io/sophia-ai/inference:latest' is not pinned by digest or version tag.",
        ),
        (
            "sophia-service-image-pinned",
            f"{C}.image",
            "ghcr.io/sophia-ai/inference:main",
            "container inference image 'ghcr.io/sophia-ai/inference:main' is not pinned by digest or version tag.",
        ),
        ("sophia-service-non-root", "spec.template.spec.hostNetwork", True, "the pod uses the host network."),
        (
            "sophia-service-non-root",
            "spec.template.spec.securityContext.runAsUser",
            0.0,
            "container inference may run as root.",
        ),
        (
            "sophia-service-non-root",
            f"{C}.securityContext.runAsNonRoot",
            False,
            "container inference may run as root.",
        ),
    ],
)
def test_each_broken_property_fails(policy: str, path: str, value: Any, expected: str | list[str]) -> None:
    inputs = _changed(SERVICE, path, value)
    assert messages(policy, service_run(inputs)) == ([expected] if isinstance(expected, str) else expected)


def _changed(inputs: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    # `nvidia.com/gpu` holds dots: walk to the resources map by hand for it.
    if path.endswith("nvidia.com/gpu"):
        result = copy.deepcopy(inputs)
        limits = result["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        del limits["nvidia.com/gpu"]
        return result
    return changed(inputs, path, value)


def test_a_deployment_that_is_no_service_is_left_to_the_general_rules() -> None:
    other = changed(SERVICE, "metadata.labels", {"app": "x"})
    other = changed(other, f"{C}.image", "nginx:latest")
    assert messages("sophia-service-image-pinned", service_run(other)) == []


def test_the_gpu_demand_at_the_most_replicas_must_fit_the_pool() -> None:
    config = {"poolGpus": {"ai-core": 10}}
    assert messages("sophia-service-gpu-capacity", service_run(SERVICE, most=10.0), config) == []
    assert messages("sophia-service-gpu-capacity", service_run(SERVICE, most=11.0), config) == [
        "services request 11 GPUs on pool ai-core at their most replicas; the pool holds 10 at its max."
    ]
    assert messages("sophia-service-gpu-capacity", service_run(SERVICE), {"poolGpus": {"data": 6}}) == [
        "services request 4 GPUs on pool ai-core, which has no GPU capacity configured."
    ]


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/sophia-ai/x:1.4.2", True),
        ("registry.local:5000/x:v2.0.1-rc.1", True),
        ("x@sha256:" + "a" * 64, True),
        ("ghcr.io/sophia-ai/x:latest", False),
        ("registry.local:5000/x", False),
    ],
)
def test_the_pack_pins_images_as_the_settings_do(image: str, pinned: bool) -> None:
    assert image_is_pinned(image) is pinned


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_each_stacks_pool_gpus_are_its_pools_max_and_the_fleet_fits(stack: str) -> None:
    """The policy config's GPU capacity per pool is what the stack's settings say (a test, like the
    budget's), and the shipped fleet passes."""
    settings = parse_settings(stack_config(stack))
    if stack == "prod":
        catalog = load_lambda_catalog()
        expected = {p.name: p.max * catalog.instance_type(p.instance_type).gpus for p in settings.gpu_pools}
    else:
        assert settings.fleet is not None
        expected = {g.pool: g.max * DR_INSTANCE_TYPES[g.instance_type].gpus for g in settings.fleet.node_groups}
    config = load_policy_config(POLICY_CONFIG_DIR / f"{stack}.json")
    assert config["sophia-service-gpu-capacity"]["poolGpus"] == expected
    evaluation = evaluate(run_stack(stack), config)
    assert [v for v in evaluation.violations if v.policy.startswith("sophia-service-")] == []
    assert json.dumps(config)  # the config is plain JSON the CLI reads
