"""The template node of a pool (what cluster-autoscaler simulates a new node with) and prices (pure).

The template is a protobuf-serialized `k8s.io/api/core/v1` Node, built with the subset of Kubernetes'
`generated.proto` in `autoscaler/protos/` (upstream field numbers). Capacity comes from the price catalog.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal

from autoscaler.config import GPU_LABEL, PROVIDER_ID_PREFIX, PoolSpec, pool_labels
from autoscaler.protos import k8s_core_v1_pb2 as core
from catalog import load_lambda_catalog

GPU_RESOURCE = "nvidia.com/gpu"
MAX_PODS = 110  # the kubelet's default
# Quantities the Go decoder parses (`resource.ParseQuantity`); canonical forms only.
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3)}
_DECIMAL.update({"M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15)})
_DECIMAL.update({"E": Decimal(10**18)})


def gpu_model(instance_type: str) -> str:
    """`gpu_1x_a100` -> `a100`: the value of the GPU label."""
    return instance_type.split("_", 2)[-1]


def architecture(instance_type: str) -> str:
    """GH200 is Grace (arm64); every other Lambda type is x86-64."""
    return "arm64" if "gh200" in instance_type else "amd64"


def template_labels(pool: PoolSpec) -> dict[str, str]:
    return {
        **pool_labels(pool.name, pool.instance_type, pool.labels),
        GPU_LABEL: gpu_model(pool.instance_type),
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture(pool.instance_type),
        "topology.kubernetes.io/region": pool.region,
    }


def capacity(instance_type: str) -> dict[str, str]:
    spec = load_lambda_catalog().instance_type(instance_type)
    return {
        "cpu": str(spec.vcpus),
        "memory": f"{spec.memory_gib}Gi",
        GPU_RESOURCE: str(spec.gpus),
        "pods": str(MAX_PODS),
    }


def template_node(pool: PoolSpec, now: float | None = None) -> core.Node:
    """A ready node of the pool as it will register: labels, taints, capacity (allocatable the same)."""
    node = core.Node()
    node.metadata.name = f"template-{pool.name}"
    node.metadata.labels.update(template_labels(pool))
    node.spec.providerID = f"{PROVIDER_ID_PREFIX}template-{pool.name}"
    for taint in pool.taints:
        node.spec.taints.add(key=taint.key, value=taint.value, effect=taint.effect)
    for name, value in capacity(pool.instance_type).items():
        node.status.capacity[name].string = value
        node.status.allocatable[name].string = value
    node.status.phase = "Running"
    since = int(now if now is not None else time.time()) - 60
    for kind, status in (("Ready", "True"), ("NetworkUnavailable", "False")):
        condition = node.status.conditions.add(type=kind, status=status, reason="Template")
        condition.lastTransitionTime.seconds = since
        condition.lastHeartbeatTime.seconds = since
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        condition = node.status.conditions.add(type=kind, status="False", reason="Template")
        condition.lastTransitionTime.seconds = since
        condition.lastHeartbeatTime.seconds = since
    return node


def template_node_bytes(pool: PoolSpec, now: float | None = None) -> bytes:
    data: bytes = template_node(pool, now).SerializeToString(deterministic=True)
    return data


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity as a number: `500m` -> 0.5, `2Gi` -> 2147483648, `1e3` -> 1000."""
    text = text.strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    if text[-1:] in _DECIMAL and text[-1:] != "":
        return Decimal(text[:-1]) * _DECIMAL[text[-1]]
    return Decimal(text)


def hourly_price(instance_type: str) -> Decimal:
    return load_lambda_catalog().instance_type(instance_type).price_usd_per_hour


def node_price(pool: PoolSpec, hours: float) -> float:
    return float(hourly_price(pool.instance_type)) * hours


def pod_requests(pod_bytes: bytes) -> dict[str, Decimal]:
    """What a pod asks of a node: the larger of its init containers and the sum of its containers, plus overhead."""
    pod = core.Pod()
    pod.ParseFromString(pod_bytes)
    total: dict[str, Decimal] = {}
    for container in pod.spec.containers:
        for name, quantity in _requests(container).items():
            total[name] = total.get(name, Decimal(0)) + quantity
    for container in pod.spec.initContainers:
        for name, quantity in _requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), quantity)
    for name, quantity in pod.spec.overhead.items():
        total[name] = total.get(name, Decimal(0)) + parse_quantity(quantity.string)
    return total


def _requests(container: core.Container) -> dict[str, Decimal]:
    # A limit without a request means request = limit (the API server's defaulting).
    merged = {name: q.string for name, q in container.resources.limits.items()}
    merged.update({name: q.string for name, q in container.resources.requests.items()})
    return {name: parse_quantity(text) for name, text in merged.items()}


def pod_price(requests: Mapping[str, Decimal], pools: Iterable[PoolSpec], hours: float) -> float:
    """The cheapest share of a pool's node that fits the requests: by GPUs when it asks for any, else by
    the larger of its CPU and memory shares. Never zero, so the price expander's ratios stay defined."""
    catalog = load_lambda_catalog()
    gpus = requests.get(GPU_RESOURCE, Decimal(0))
    cpu = requests.get("cpu", Decimal(0))
    memory_gib = requests.get("memory", Decimal(0)) / Decimal(2**30)
    shares = []
    for pool in pools:
        spec = catalog.instance_type(pool.instance_type)
        share = max(cpu / spec.vcpus, memory_gib / spec.memory_gib)
        if gpus > 0:
            share = max(share, gpus / spec.gpus)
        shares.append(spec.price_usd_per_hour * share)
    cheapest = min(shares) if shares else Decimal(0)
    return max(float(cheapest) * hours, 1e-6)
