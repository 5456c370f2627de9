"""The template node of a pool (what cluster-autoscaler simulates a new node with) and prices (pure).

The template is a protobuf-serialized `k8s.io/api/core/v1` Node, built with the subset of Kubernetes'
`generated.proto` in `autoscaler/protos/` (upstream field numbers). It mirrors what a real node of the
pool reports, so that the autoscaler neither adds nodes for pods that will not fit nor waits on pods
that would:

- capacity: CPUs and GPUs from the price catalog; memory is the catalog's less what the Linux kernel
  keeps for itself (the kernel reserves memory before the kubelet sees it: upstream's estimate,
  `CalculateKernelReserved` in cloudprovider/gce/gce_reserved.go @1.36.1, Linux on Ubuntu, which the
  Lambda Stack image is); ephemeral storage is the instance type's disk as `GET /instance-types`
  reports it (`specs.storage_gib`), fetched by the service;
- allocatable: capacity less what the kubelet holds back. k3s sets no kube- or system-reserved, and
  replaces the kubelet's eviction defaults with `imagefs.available<5%,nodefs.available<5%`
  (pkg/daemons/agent in k3s): ephemeral storage keeps 95%. Memory is also kept 100Mi under capacity,
  the kubelet's own default `memory.available<100Mi`, so the template never promises memory a node
  may not give whichever default applies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal

from autoscaler.config import PROVIDER_ID_PREFIX, PoolSpec, pool_labels
from autoscaler.protos import k8s_core_v1_pb2 as core
from policies.catalog import load_lambda_catalog

GPU_RESOURCE = "nvidia.com/gpu"
MAX_PODS = 110  # the kubelet's default
MIB = 2**20
GIB = 2**30
# k3s's kubelet eviction threshold on the node's filesystem (nodefs.available<5%).
NODEFS_EVICTION_RATIO = Decimal("0.05")
# The kubelet's default hard eviction threshold for memory.
MEMORY_EVICTION_BYTES = 100 * MIB
# Quantities the Go decoder parses (`resource.ParseQuantity`); canonical forms only.
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3)}
_DECIMAL.update({"M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15)})
_DECIMAL.update({"E": Decimal(10**18)})


def architecture(instance_type: str) -> str:
    """GH200 is Grace (arm64); every other Lambda type is x86-64."""
    return "arm64" if "gh200" in instance_type else "amd64"


def template_labels(pool: PoolSpec) -> dict[str, str]:
    """Exactly the labels a real node of the pool has: those its join script registers it with, and
    os and arch, which the kubelet sets. No topology region: a burst instance may land in a fallback
    region, and k3s's cloud provider sets topology labels only from labels a node registered with."""
    return {
        **pool_labels(pool.name, pool.instance_type, pool.labels),
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture(pool.instance_type),
    }


def kernel_reserved_bytes(memory_bytes: int) -> int:
    """Memory the Linux kernel keeps from a machine of `memory_bytes` (upstream's estimate for Ubuntu:
    1/64 of it, 16Mi, 64Mi of software IO TLB above 3Gi, 8Mi at or below 8Gi, 0.175% capped at 248Mi,
    and 4Mi for Ubuntu; gce_reserved.go @1.36.1)."""
    reserved = memory_bytes // 64 + 16 * MIB
    if memory_bytes > 3 * GIB:
        reserved += 64 * MIB
    if memory_bytes <= 8 * GIB:
        reserved += 8 * MIB
    reserved += min(int(Decimal("0.00175") * memory_bytes), 248 * MIB)
    return reserved + 4 * MIB


def _ki(amount: int | Decimal) -> str:
    """Bytes as a canonical Kubernetes quantity in Ki (rounded down: never more than there is)."""
    return f"{int(amount) // 1024}Ki"


def resources(instance_type: str, storage_gib: int) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable) of a node of the type whose disk holds `storage_gib`."""
    spec = load_lambda_catalog().instance_type(instance_type)
    memory = spec.memory_gib * GIB - kernel_reserved_bytes(spec.memory_gib * GIB)
    storage = storage_gib * GIB
    capacity = {
        "cpu": str(spec.vcpus),
        "memory": _ki(memory),
        "ephemeral-storage": _ki(storage),
        GPU_RESOURCE: str(spec.gpus),
        "pods": str(MAX_PODS),
    }
    allocatable = {
        **capacity,
        "memory": _ki(memory - MEMORY_EVICTION_BYTES),
        "ephemeral-storage": _ki(storage * (1 - NODEFS_EVICTION_RATIO)),
    }
    return capacity, allocatable


def template_node(pool: PoolSpec, storage_gib: int, now: float | None = None) -> core.Node:
    """A ready node of the pool as it will register: labels, taints, capacity and allocatable."""
    node = core.Node()
    node.metadata.name = f"template-{pool.name}"
    node.metadata.labels.update(template_labels(pool))
    node.spec.providerID = f"{PROVIDER_ID_PREFIX}template-{pool.name}"
    for taint in pool.taints:
        node.spec.taints.add(key=taint.key, value=taint.value, effect=taint.effect)
    capacity, allocatable = resources(pool.instance_type, storage_gib)
    for name, value in capacity.items():
        node.status.capacity[name].string = value
    for name, value in allocatable.items():
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


def template_node_bytes(pool: PoolSpec, storage_gib: int, now: float | None = None) -> bytes:
    data: bytes = template_node(pool, storage_gib, now).SerializeToString(deterministic=True)
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


# Resources a pod-level request may set (the PodLevelResources feature); others come from containers.
POD_LEVEL_RESOURCES = frozenset({"cpu", "memory"})


def pod_requests(pod_bytes: bytes) -> dict[str, Decimal]:
    """What a pod asks of a node, as the scheduler counts it (k8s.io/component-helpers resource.PodRequests):
    the sum of its containers and of its sidecars (init containers with restartPolicy Always, which run
    alongside), or the largest init container plus the sidecars started before it if that is more;
    pod-level requests replace the total for CPU and memory; the overhead is added."""
    pod = core.Pod()
    pod.ParseFromString(pod_bytes)
    total: dict[str, Decimal] = {}
    for container in pod.spec.containers:
        _add(total, _requests(container.resources))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for container in pod.spec.initContainers:
        requests = _requests(container.resources)
        if container.restartPolicy == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            during = dict(sidecars)
        else:
            during = dict(sidecars)
            _add(during, requests)
        for name, quantity in during.items():
            init_peak[name] = max(init_peak.get(name, Decimal(0)), quantity)
    for name, quantity in init_peak.items():
        total[name] = max(total.get(name, Decimal(0)), quantity)
    if pod.spec.HasField("resources"):
        for name, quantity in _requests(pod.spec.resources).items():
            if name in POD_LEVEL_RESOURCES:
                total[name] = quantity
    for name, quantity in pod.spec.overhead.items():
        total[name] = total.get(name, Decimal(0)) + parse_quantity(quantity.string)
    return total


def _add(into: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for name, quantity in more.items():
        into[name] = into.get(name, Decimal(0)) + quantity


def _requests(resources: core.ResourceRequirements) -> dict[str, Decimal]:
    # A limit without a request means request = limit (the API server's defaulting).
    merged = {name: q.string for name, q in resources.limits.items()}
    merged.update({name: q.string for name, q in resources.requests.items()})
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
