"""What the service fleet costs per kind of service: each service's share of the pools it runs on.

From the resources the harness collected, as the engine would see them: a pool's monthly cost is
what the cost model prices its Lambda instances at; its capacity is those instances' GPUs, vCPUs
and memory (the price catalog). In the DR region a pool is the EKS node group labelled with it, at
its desired size and the catalog's price for its instance type (the budget prices the group at its
max size, what a failover may scale it to; the standby runs the desired size). A backend (a Deployment of a service
on one pool) holds the replicas its ScaledObject keeps while the service is up (`minReplicaCount`,
or the cron trigger's `desiredReplicas` for a hibernating one), each with the requests of its pod.
Its share of the pool is its dominant share: the largest of its GPU, CPU and memory fractions of
the pool's capacity. Shares that add up past the whole pool are scaled down to it; what no service
holds is reported as the pool's idle capacity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policies.catalog import HOURS_PER_MONTH, load_lambda_catalog
from policies.catalog.aws_prices import load_aws_prices
from policies.costing import CostReport
from settings.services import DR_INSTANCE_TYPES
from tools.harness import StackRun
from tools.redact import plaintext

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SERVICE_LABEL = "sophia.ai/service"
KIND_LABEL = "sophia.ai/service-kind"
POOL_LABEL = "sophia.ai/pool"
IDLE = "idle"


@dataclass(frozen=True)
class ServiceCost:
    """One backend's share of its pool."""

    service: str
    kind: str
    pool: str
    share: Decimal
    """Fraction of the pool's capacity it holds (after scaling an oversubscribed pool down to it)."""
    monthly_usd: Decimal


@dataclass(frozen=True)
class FleetCost:
    services: tuple[ServiceCost, ...]
    idle_usd: Mapping[str, Decimal]
    """Per pool, what no service holds."""

    def by_kind(self) -> dict[str, Decimal]:
        """Monthly cost per kind of service, and the pools' idle capacity."""
        totals: dict[str, Decimal] = {}
        for item in self.services:
            totals[item.kind] = totals.get(item.kind, Decimal(0)) + item.monthly_usd
        idle = sum(self.idle_usd.values(), Decimal(0))
        result = dict(sorted(totals.items()))
        if idle:
            result[IDLE] = idle
        return result

    def by_service(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for item in self.services:
            totals[item.service] = totals.get(item.service, Decimal(0)) + item.monthly_usd
        return dict(sorted(totals.items()))


@dataclass(frozen=True)
class _Capacity:
    gpus: Decimal
    cpu: Decimal
    memory_gib: Decimal


def _quantity_cpu(value: Any) -> Decimal:
    text = str(value)
    return Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)


def _quantity_gib(value: Any) -> Decimal:
    text = str(value)
    if text.endswith("Gi"):
        return Decimal(text[:-2])
    if text.endswith("Mi"):
        return Decimal(text[:-2]) / 1024
    return Decimal(text) / (1024**3)


def _add(totals: dict[str, _Capacity], pool: str, count: Decimal, shape: tuple[int, int, int]) -> None:
    """Add `count` nodes of (GPUs, vCPUs, memory GiB) to the pool's capacity."""
    gpus, vcpus, memory_gib = shape
    now = totals.get(pool, _Capacity(Decimal(0), Decimal(0), Decimal(0)))
    totals[pool] = _Capacity(now.gpus + count * gpus, now.cpu + count * vcpus, now.memory_gib + count * memory_gib)


def _pools(run: StackRun) -> tuple[dict[str, _Capacity], dict[str, str], dict[str, Decimal]]:
    """Each pool's capacity, which priced resources (URN -> pool) bill for it (the Lambda instances of
    a pool), and the monthly cost of the EKS node groups standing in for pools in the DR region (at
    their desired size)."""
    catalog = load_lambda_catalog()
    ec2_hourly = load_aws_prices().ec2_hourly
    totals: dict[str, _Capacity] = {}
    billed: dict[str, str] = {}
    groups: dict[str, Decimal] = {}
    for instance in run.by_type(LAMBDA_INSTANCE):
        spec = catalog.instance_types.get(str(instance.inputs.get("instance_type")))
        pool = str((instance.inputs.get("tags") or {}).get("pool", ""))
        if spec is not None and pool:
            _add(totals, pool, Decimal(1), (spec.gpus, spec.vcpus, spec.memory_gib))
            billed[instance.urn] = pool
    for group in run.by_type(NODE_GROUP):
        pool = str((group.inputs.get("labels") or {}).get(POOL_LABEL, ""))
        types = group.inputs.get("instanceTypes") or []
        shape = DR_INSTANCE_TYPES.get(str(types[0])) if types else None
        desired = (group.inputs.get("scalingConfig") or {}).get("desiredSize")
        price = ec2_hourly.get(str(types[0])) if types else None
        if shape is not None and price is not None and pool and isinstance(desired, (int, float)):
            _add(totals, pool, Decimal(str(desired)), (shape.gpus, shape.vcpus, shape.memory_gib))
            groups[pool] = groups.get(pool, Decimal(0)) + Decimal(str(desired)) * price * HOURS_PER_MONTH
    return totals, billed, groups


def _floor_replicas(scaler: Mapping[str, Any]) -> Decimal:
    spec = scaler.get("spec") or {}
    floor = Decimal(str(spec.get("minReplicaCount", 0)))
    for trigger in spec.get("triggers") or []:
        if trigger.get("type") == "cron":
            floor = max(floor, Decimal(str((trigger.get("metadata") or {}).get("desiredReplicas", 0))))
    return floor


def fleet_cost(run: StackRun, cost: CostReport) -> FleetCost | None:
    """The fleet's cost by service, or None when the stack runs no fleet."""
    deployments = [
        r for r in run.by_type(DEPLOYMENT) if SERVICE_LABEL in ((r.inputs.get("metadata") or {}).get("labels") or {})
    ]
    if not deployments:
        return None
    scalers = {
        (
            (r.inputs.get("metadata") or {}).get("namespace"),
            (r.inputs.get("spec") or {}).get("scaleTargetRef", {}).get("name"),
        ): r.inputs
        for r in run.by_type(SCALED_OBJECT)
    }
    capacity, billed, pool_cost = _pools(run)
    for item in cost.items:
        if item.urn in billed:
            pool = billed[item.urn]
            pool_cost[pool] = pool_cost.get(pool, Decimal(0)) + item.monthly_usd
    raw: list[tuple[str, str, str, Decimal]] = []
    for deployment in deployments:
        inputs = plaintext(dict(deployment.inputs))
        metadata = inputs.get("metadata") or {}
        pod = ((inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
        pool = str((pod.get("nodeSelector") or {}).get(POOL_LABEL, ""))
        scaler = scalers.get((metadata.get("namespace"), metadata.get("name")))
        size = capacity.get(pool)
        if scaler is None or size is None:
            continue
        replicas = _floor_replicas(scaler)
        requests: dict[str, Any] = {}
        for container in pod.get("containers") or []:
            requests = (container.get("resources") or {}).get("requests") or {}
        fractions = [
            Decimal(str(requests.get("nvidia.com/gpu", 0))) * replicas / size.gpus if size.gpus else Decimal(0),
            _quantity_cpu(requests.get("cpu", 0)) * replicas / size.cpu if size.cpu else Decimal(0),
            _quantity_gib(requests.get("memory", "0Gi")) * replicas / size.memory_gib
            if size.memory_gib
            else Decimal(0),
        ]
        labels = metadata.get("labels") or {}
        raw.append((str(labels[SERVICE_LABEL]), str(labels.get(KIND_LABEL, "")), pool, max(fractions)))
    held: dict[str, Decimal] = {}
    for _, _, pool, share in raw:
        held[pool] = held.get(pool, Decimal(0)) + share
    items = []
    for service, kind, pool, share in raw:
        scaled = share / held[pool] if held[pool] > 1 else share
        items.append(ServiceCost(service, kind, pool, scaled, scaled * pool_cost.get(pool, Decimal(0))))
    idle = {
        pool: pool_cost[pool] * (1 - min(held.get(pool, Decimal(0)), Decimal(1)))
        for pool in sorted(pool_cost)
        if pool in held
    }
    return FleetCost(tuple(items), idle)
