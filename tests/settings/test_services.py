"""Service fleet settings: each rule, broken alone on the valid prod config, names its key; the
plan's scaling values are the defaults; the fleet's cross-stack rules hold."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from settings import SettingsError, parse_settings
from settings.services import ScalingSettings, ServiceKind, check_pinned_image, cpu_millis, memory_mib
from tests.helpers import decoded, stack_config, with_value
from tests.settings.broken import Broken, assert_rejected

SERVICES: list[dict[str, Any]] = decoded(stack_config(), "sophia:services")
FLEET: dict[str, Any] = decoded(stack_config(), "sophia:fleet")


def services(index: int = 0, **changes: Any) -> list[dict[str, Any]]:
    """The prod services with service `index` changed (a value of None removes the key)."""
    result = copy.deepcopy(SERVICES)
    result[index].update(changes)
    result[index] = {k: v for k, v in result[index].items() if v is not None}
    return result


def fleet(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(FLEET), **changes}


def gateway(**changes: Any) -> dict[str, Any]:
    return fleet(gateway={**FLEET["gateway"], **changes})


CPU_SERVICE = 5  # customer-api: business pool, no GPU, a canary
GPU_SERVICE = 1  # embeddings: ai-core, one GPU

BROKEN: list[Broken] = [
    ("bad name", "sophia:services", services(name="Inference"), "sophia:services[0].name"),
    ("name too long", "sophia:services", services(name="a" * 25), "sophia:services[0].name"),
    ("duplicate name", "sophia:services", services(1, name="inference"), "sophia:services"),
    ("unknown kind", "sophia:services", services(kind="ml"), "sophia:services[0].kind"),
    ("latest tag", "sophia:services", services(image="ghcr.io/sophia-ai/inference:latest"), "sophia:services[0].image"),
    ("no tag", "sophia:services", services(image="ghcr.io/sophia-ai/inference"), "sophia:services[0].image"),
    ("moving tag", "sophia:services", services(image="ghcr.io/sophia-ai/inference:main"), "sophia:services[0].image"),
    ("short digest", "sophia:services", services(image="ghcr.io/x/y@sha256:abc"), "sophia:services[0].image"),
    ("privileged port", "sophia:services", services(port=80), "sophia:services[0].port"),
    ("relative health path", "sophia:services", services(healthPath="healthz"), "sophia:services[0].healthPath"),
    ("unknown pool", "sophia:services", services(pool="gpu-xl"), "sophia:services[0].pool"),
    ("a pool twice", "sophia:services", services(pool=["ai-core", "ai-core"]), "sophia:services[0].pool"),
    ("no pool", "sophia:services", services(pool=[]), "sophia:services[0].pool"),
    (
        "more GPUs than a node has",
        "sophia:services",
        services(GPU_SERVICE, resources={"cpu": "4", "memory": "32Gi", "gpus": 2}),
        "sophia:services[1].resources.gpus",
    ),
    (
        "more CPU than a node has",
        "sophia:services",
        services(CPU_SERVICE, resources={"cpu": "16", "memory": "4Gi"}),
        "sophia:services[5].resources.cpu",
    ),
    (
        "more memory than a node has",
        "sophia:services",
        services(CPU_SERVICE, resources={"cpu": "2", "memory": "101Gi"}),
        "sophia:services[5].resources.memory",
    ),
    (
        "cpu in words",
        "sophia:services",
        services(CPU_SERVICE, resources={"cpu": "2 cores", "memory": "4Gi"}),
        "sophia:services[5].resources.cpu",
    ),
    (
        "memory in GB",
        "sophia:services",
        services(CPU_SERVICE, resources={"cpu": "2", "memory": "4G"}),
        "sophia:services[5].resources.memory",
    ),
    (
        "tiny cpu",
        "sophia:services",
        services(CPU_SERVICE, resources={"cpu": "1m", "memory": "4Gi"}),
        "sophia:services[5].resources.cpu",
    ),
    ("min above max", "sophia:services", services(replicas={"min": 5, "max": 4}), "sophia:services[0].replicas.min"),
    ("zero min", "sophia:services", services(replicas={"min": 0, "max": 4}), "sophia:services[0].replicas.min"),
    ("window too short", "sophia:services", services(scaling={"window": "30s"}), "sophia:services[0].scaling.window"),
    ("window too long", "sophia:services", services(scaling={"window": "2h"}), "sophia:services[0].scaling.window"),
    ("window in words", "sophia:services", services(scaling={"window": "5 min"}), "sophia:services[0].scaling.window"),
    (
        "zero cpu trigger",
        "sophia:services",
        services(scaling={"cpuPercent": 0}),
        "sophia:services[0].scaling.cpuPercent",
    ),
    (
        "next is the same image",
        "sophia:services",
        services(CPU_SERVICE, next={"image": SERVICES[CPU_SERVICE]["image"], "weight": 10}),
        "sophia:services[5].next.image",
    ),
    (
        "next not pinned",
        "sophia:services",
        services(CPU_SERVICE, next={"image": "ghcr.io/sophia-ai/customer-api:latest", "weight": 10}),
        "sophia:services[5].next.image",
    ),
    (
        "standby above max",
        "sophia:services",
        services(dr={"standbyReplicas": 5}),
        "sophia:services[0].dr.standbyReplicas",
    ),
    ("calls itself", "sophia:services", services(callers=["inference"]), "sophia:services[0].callers"),
    ("unknown caller", "sophia:services", services(callers=["nobody"]), "sophia:services[0].callers"),
    (
        "bad off-hours",
        "sophia:services",
        services(offHours={"timezone": "Mars/Olympus", "stopAt": "20:00", "startAt": "07:00"}),
        "sophia:services[0].offHours.timezone",
    ),
    ("misspelt key", "sophia:services", services(replica={"min": 1, "max": 2}), "sophia:services[0].replica"),
    ("fleet namespace not a client", "sophia:fleet", fleet(namespace="elsewhere"), "sophia:fleet.namespace"),
    ("unknown gateway pool", "sophia:fleet", gateway(pool="edge"), "sophia:fleet.gateway.pool"),
    ("bad host name", "sophia:fleet", gateway(hostnames=["API.sophia.ai"]), "sophia:fleet.gateway.hostnames"),
    ("a host twice", "sophia:fleet", gateway(hostnames=["a.sophia.ai"] * 2), "sophia:fleet.gateway.hostnames"),
    ("no host", "sophia:fleet", gateway(hostnames=[]), "sophia:fleet.gateway.hostnames"),
    ("bad e-mail", "sophia:fleet", gateway(acmeEmail="ops"), "sophia:fleet.gateway.acmeEmail"),
    ("bad zone", "sophia:fleet", gateway(hostedZoneId="sophia.ai"), "sophia:fleet.gateway.hostedZoneId"),
    ("zero sampling", "sophia:fleet", fleet(tracing={"sampleRatio": 0.0}), "sophia:fleet.tracing.sampleRatio"),
    ("prometheus url not a url", "sophia:fleet", fleet(prometheusUrl="prometheus:9090"), "sophia:fleet.prometheusUrl"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)


def test_services_need_the_fleet_settings() -> None:
    config = stack_config()
    del config["sophia:fleet"]
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    assert caught.value.keys == ("sophia:fleet",)
    assert "is required when services is not empty" in str(caught.value)


def test_the_clusters_own_prometheus_needs_its_url() -> None:
    operators = {**decoded(stack_config(), "sophia:operators"), "prometheusStack": "existing"}
    assert_rejected("sophia:operators", operators, "sophia:fleet.prometheusUrl")
    config = with_value(stack_config(), "sophia:operators", operators)
    config = with_value(config, "sophia:fleet", fleet(prometheusUrl="http://prometheus-operated.monitoring.svc:9090"))
    assert parse_settings(config).fleet is not None


def test_the_fleet_needs_kubernetes_1_33() -> None:
    kubernetes = {**decoded(stack_config(), "sophia:kubernetes"), "version": "1.31"}
    message = assert_rejected("sophia:kubernetes", kubernetes, "sophia:kubernetes.version")
    assert "1.33" in message
    # Without services an older cluster is fine.
    config = with_value(with_value(stack_config(), "sophia:kubernetes", kubernetes), "sophia:services", [])
    assert parse_settings(config).services == ()


def test_the_plans_triggers_are_the_defaults() -> None:
    defaults = ScalingSettings()
    assert (defaults.cpu_percent, defaults.memory_percent, defaults.queue_depth, defaults.p95_latency_ms) == (
        70,
        80,
        100,
        500,
    )
    assert defaults.window_seconds == 300


def test_prod_lists_a_representative_fleet() -> None:
    settings = parse_settings(stack_config())
    kinds = {kind: [s.name for s in settings.services if s.kind is kind] for kind in ServiceKind}
    assert len(settings.services) == 14
    assert all(len(names) >= 4 for names in kinds.values()), kinds
    assert any(len(s.pool) > 1 for s in settings.services), "one service spans pools (weighted routing)"
    assert any(s.next is not None for s in settings.services), "one service has a canary"
    assert any(s.off_hours is not None for s in settings.services), "one service hibernates"


def test_one_pool_may_be_written_as_a_name_or_a_list() -> None:
    config = with_value(stack_config(), "sophia:services", services(GPU_SERVICE, pool=["ai-core"]))
    assert parse_settings(config).services[GPU_SERVICE].pool == ("ai-core",)


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/sophia-ai/x:1.4.2", True),
        ("ghcr.io/sophia-ai/x:v2.0.1-rc.1", True),
        ("registry.local:5000/team/x:2026.11.20", True),
        ("x@sha256:" + "a" * 64, True),
        ("ghcr.io/sophia-ai/x:latest", False),
        ("ghcr.io/sophia-ai/x:stable", False),
        ("ghcr.io/sophia-ai/x", False),
        ("registry.local:5000/x", False),
        ("x@sha256:" + "A" * 64, False),
    ],
)
def test_pinned_images(image: str, pinned: bool) -> None:
    if pinned:
        assert check_pinned_image(image) == image
    else:
        with pytest.raises(ValueError, match="must be pinned"):
            check_pinned_image(image)


def test_quantities() -> None:
    assert [cpu_millis(v) for v in ("500m", "2", "1.5")] == [500, 2000, 1500]
    assert [memory_mib(v) for v in ("512Mi", "4Gi")] == [512, 4096]


def _many(count: int) -> list[dict[str, Any]]:
    template = {k: v for k, v in SERVICES[CPU_SERVICE].items() if k != "next"}
    return [{**template, "name": f"svc-{i}", "callers": []} for i in range(count)]


def _service_past(**changes: Any) -> list[dict[str, Any]]:
    return services(CPU_SERVICE, **changes)


# (stack, config key, value one past the bound, key the error names, the bound as the message gives it);
# tests/settings/test_bounds.py adds these to its cases.
SERVICE_BOUNDS: list[tuple[str, str, Any, str, str]] = [
    ("prod", "sophia:services", _many(201), "sophia:services", "200"),
    ("prod", "sophia:services", _service_past(pool=["a", "b", "c", "d", "e"]), "sophia:services[5].pool", "4"),
    (
        "prod",
        "sophia:services",
        _service_past(resources={"cpu": "1", "memory": "1Gi", "gpus": 9}),
        "sophia:services[5].resources.gpus",
        "8",
    ),
    ("prod", "sophia:services", _service_past(port=65536), "sophia:services[5].port", "65535"),
    (
        "prod",
        "sophia:services",
        _service_past(replicas={"min": 201, "max": 200}),
        "sophia:services[5].replicas.min",
        "200",
    ),
    (
        "prod",
        "sophia:services",
        _service_past(replicas={"min": 1, "max": 201}),
        "sophia:services[5].replicas.max",
        "200",
    ),
    *[
        ("prod", "sophia:services", _service_past(scaling={key: past}), f"sophia:services[5].scaling.{key}", bound)
        for key, past, bound in [
            ("cpuPercent", 101, "100"),
            ("memoryPercent", 101, "100"),
            ("queueDepth", 1_000_001, "1000000"),
            ("p95LatencyMs", 600_001, "600000"),
        ]
    ],
    (
        "prod",
        "sophia:services",
        _service_past(next={"image": "ghcr.io/sophia-ai/customer-api:2.8.0", "weight": 101}),
        "sophia:services[5].next.weight",
        "100",
    ),
    (
        "prod",
        "sophia:services",
        _service_past(dr={"standbyReplicas": 201}),
        "sophia:services[5].dr.standbyReplicas",
        "200",
    ),
    ("prod", "sophia:services", _service_past(callers=["billing"] * 201), "sophia:services[5].callers", "200"),
    ("prod", "sophia:services", _service_past(timeoutSeconds=3601), "sophia:services[5].timeoutSeconds", "3600"),
    (
        "prod",
        "sophia:fleet",
        gateway(hostnames=[f"h{i}.sophia.ai" for i in range(17)]),
        "sophia:fleet.gateway.hostnames",
        "16",
    ),
    ("prod", "sophia:fleet", fleet(tracing={"sampleRatio": 1.5}), "sophia:fleet.tracing.sampleRatio", "1"),
    ("prod", "sophia:fleet", fleet(tracing={"retentionHours": 721}), "sophia:fleet.tracing.retentionHours", "720"),
    ("prod", "sophia:fleet", fleet(tracing={"storageGib": 4097}), "sophia:fleet.tracing.storageGib", "4096"),
]


DR_FLEET: dict[str, Any] = decoded(stack_config("dr"), "sophia:fleet")


def dr_fleet(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DR_FLEET), **changes}


def node_groups(index: int = 0, **changes: Any) -> dict[str, Any]:
    groups = copy.deepcopy(DR_FLEET["nodeGroups"])
    groups[index].update(changes)
    return dr_fleet(nodeGroups=groups)


SERVICE_BOUNDS += [
    (
        "dr",
        "sophia:fleet",
        dr_fleet(nodeGroups=[{**DR_FLEET["nodeGroups"][0], "pool": f"p{i}"} for i in range(17)]),
        "sophia:fleet.nodeGroups",
        "16",
    ),
    ("dr", "sophia:fleet", node_groups(min=101, max=100), "sophia:fleet.nodeGroups[0].min", "100"),
    ("dr", "sophia:fleet", node_groups(max=101), "sophia:fleet.nodeGroups[0].max", "100"),
]

DR_BROKEN: list[Broken] = [
    ("no node groups", "sophia:fleet", dr_fleet(nodeGroups=[]), "sophia:fleet.nodeGroups"),
    (
        "a pool without a node group",
        "sophia:fleet",
        dr_fleet(nodeGroups=DR_FLEET["nodeGroups"][:3]),
        "sophia:services[4].pool",
    ),
    (
        "unknown EC2 type",
        "sophia:fleet",
        node_groups(instanceType="p5.48xlarge"),
        "sophia:fleet.nodeGroups[0].instanceType",
    ),
    ("min above max", "sophia:fleet", node_groups(min=3, max=2), "sophia:fleet.nodeGroups[0].min"),
    ("a pool twice", "sophia:fleet", node_groups(1, pool="ai-core"), "sophia:fleet.nodeGroups"),
    (
        "a GPU service on a node group without GPUs",
        "sophia:fleet",
        node_groups(3, instanceType="m6i.4xlarge"),
        "sophia:services[4].resources.gpus",
    ),
    ("namespace the DR stores do not admit", "sophia:fleet", dr_fleet(namespace="apps"), "sophia:fleet.namespace"),
    (
        "another zone than the failover's",
        "sophia:fleet",
        dr_fleet(gateway={**DR_FLEET["gateway"], "hostedZoneId": "Z0OTHER"}),
        "sophia:fleet.gateway.hostedZoneId",
    ),
    (
        "unknown health service",
        "sophia:fleet",
        dr_fleet(gateway={**DR_FLEET["gateway"], "healthService": "nobody"}),
        "sophia:fleet.gateway.healthService",
    ),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), DR_BROKEN, ids=[b[0] for b in DR_BROKEN])
def test_each_broken_dr_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key, stack="dr")


def test_the_dr_fleet_needs_eks_1_33_and_monitoring() -> None:
    dr = decoded(stack_config("dr"), "sophia:dr")
    message = assert_rejected(
        "sophia:dr", {**dr, "eks": {**dr["eks"], "version": "1.32"}}, "sophia:dr.eks.version", "dr"
    )
    assert "1.33" in message
    config = stack_config("dr")
    del config["sophia:monitoring"]
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    assert caught.value.keys == ("sophia:monitoring",)


def test_node_groups_are_for_the_dr_stack_only() -> None:
    assert_rejected("sophia:fleet", {**FLEET, "nodeGroups": DR_FLEET["nodeGroups"]}, "sophia:fleet.nodeGroups")
