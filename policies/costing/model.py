"""Price each resource from its engine-shaped properties; one model for the plan and the policies.

Maxima, not desired sizes: an EKS node group or an autoscaling group at its `maxSize` (of its
dearest instance type), an RDS instance at its `maxAllocatedStorage`. Every resource gets a verdict:
*priced*, *usage* (bills by use or through another priced resource, not estimated), *free*, or
*unpriced* (it bills, but its type or one of its price inputs is not in the tables): the budget
policies refuse an unpriced resource unless it is named as an exception. Types the model does not
price are classified in `policies/catalog/billing.json`; a type found nowhere is unpriced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from pulumi_policy.proxy import UnknownValueError

from policies.catalog.aws_prices import AwsPrices, load_aws_prices
from policies.catalog.billing import load_billing_classes
from policies.catalog.lambda_catalog import HOURS_PER_MONTH, LambdaCatalog, load_lambda_catalog

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
LAMBDA_FLEET = "pulumi-python:dynamic/lambda:Fleet"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
COMPONENT_PREFIXES = ("pulumi:pulumi:Stack", "sophia:")


class ResourceLike(Protocol):
    """What the model needs of a resource: the harness's records and policy subjects both fit."""

    @property
    def urn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def resource_type(self) -> str: ...

    @property
    def props(self) -> Mapping[str, Any]: ...

    @property
    def property_dependencies(self) -> Mapping[str, Sequence[str]]: ...


Lookup = Callable[[str], ResourceLike | None]


@dataclass(frozen=True)
class StackContext:
    """What pricing one resource may need from the rest of the stack."""

    lookup: Lookup
    """A resource by URN (a launch template a group names)."""
    recorded_launches: frozenset[str]
    """Launch keys of the Lambda instance records (priced on their own, not again in the fleet)."""


class Unpriced(Exception):  # noqa: N818 - a verdict
    """The resource bills but cannot be priced from the tables."""


class Deferred(Exception):  # noqa: N818 - a verdict
    """The price depends on another resource (a launch template): priced with the whole stack."""


@dataclass(frozen=True)
class Verdict:
    category: str
    """`priced`, `usage`, `free`, `unpriced`, `unknown` (a price input not known during preview),
    or `deferred` (priced only with the resources it refers to)."""
    monthly_usd: Decimal = Decimal(0)
    basis: str = ""
    """How the figure was reached, e.g. '6 x r6i.xlarge (max size)'; or why it is not priced."""
    group: str = ""
    """What the cost is booked to: a GPU pool's name, or the resource type's service."""


@dataclass(frozen=True)
class CostItem:
    urn: str
    name: str
    resource_type: str
    monthly_usd: Decimal
    basis: str
    group: str

    @property
    def hourly_usd(self) -> Decimal:
        return self.monthly_usd / HOURS_PER_MONTH


@dataclass(frozen=True)
class UnpricedItem:
    urn: str
    name: str
    resource_type: str
    reason: str


@dataclass(frozen=True)
class CostReport:
    items: tuple[CostItem, ...]
    unpriced: tuple[UnpricedItem, ...] = field(default=())
    """Resources that bill but cannot be priced (unknown type, class or size not in the tables)."""
    unknown: tuple[UnpricedItem, ...] = field(default=())
    """Resources whose price inputs are not known yet (preview)."""

    @property
    def monthly_usd(self) -> Decimal:
        return sum((i.monthly_usd for i in self.items), Decimal(0))

    @property
    def hourly_usd(self) -> Decimal:
        return self.monthly_usd / HOURS_PER_MONTH

    def by_group(self) -> dict[str, Decimal]:
        """Cost per group; groups that cost nothing (ClusterIP services, a fleet of recorded members) left out."""
        groups: dict[str, Decimal] = {}
        for item in self.items:
            groups[item.group] = groups.get(item.group, Decimal(0)) + item.monthly_usd
        return {group: cost for group, cost in sorted(groups.items()) if cost}


Pricer = Callable[[Mapping[str, Any], "StackContext | None", LambdaCatalog, AwsPrices], tuple[Decimal, str, str]]


def _num(value: Any, default: float | None = None) -> Decimal:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            pass
    if default is None:
        raise Unpriced(f"size {value!r} is not a number")
    return Decimal(str(default))


def _count(value: Decimal) -> str:
    """6 rather than 6.0; 0.5 stays 0.5."""
    return str(int(value)) if value == value.to_integral_value() else str(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _hourly(table: Mapping[str, Decimal], name: Any, what: str) -> Decimal:
    price = table.get(str(name)) if name else None
    if price is None:
        raise Unpriced(f"{what} {name!r} is not in policies/catalog/aws_prices.json")
    return price


def _lambda_instance(props: Mapping[str, Any], _l: StackContext | None, lambdas: LambdaCatalog, _a: AwsPrices) -> Any:
    spec = lambdas.instance_types.get(str(props.get("instance_type")))
    if spec is None:
        raise Unpriced(f"instance type {props.get('instance_type')!r} is not in policies/catalog/lambda_catalog.json")
    pool = str(_map(props.get("tags")).get("pool", "unpooled"))
    return spec.price_usd_per_hour * HOURS_PER_MONTH, f"1 x {spec.name}", f"gpu-pool/{pool}"


def _lambda_fleet(props: Mapping[str, Any], stack: StackContext | None, lambdas: LambdaCatalog, _a: AwsPrices) -> Any:
    """The fleet launches its members: each must be a priced type; a member no instance record
    stands for is priced here (records are priced on their own)."""
    monthly, launched = Decimal(0), []
    for member in _list(props.get("members")):
        node = _map(member)
        spec = lambdas.instance_types.get(str(node.get("instance_type")))
        if spec is None:
            raise Unpriced(f"member {node.get('name')!r} runs {node.get('instance_type')!r}, not in the Lambda catalog")
        if stack is not None and node.get("launch_key") not in stack.recorded_launches:
            monthly += spec.price_usd_per_hour * HOURS_PER_MONTH
            launched.append(f"{node.get('name')} ({spec.name})")
    basis = f"members without an instance record: {', '.join(launched)}" if launched else "members priced as records"
    return monthly, basis, "gpu-pool/fleet"


def _template(props: Mapping[str, Any], key: str, stack: StackContext | None) -> Mapping[str, Any]:
    """The launch template (or configuration) `key` points at, found through its property dependency."""
    if stack is None:
        raise Deferred("its instance type is in the launch template it names")
    for urn in _dependencies(props, key):
        found = stack.lookup(urn)
        if found is not None:
            return found.props
    raise Unpriced(f"the launch template of {key} is not in the stack, so its instance type is unknown")


def _dependencies(props: Mapping[str, Any], key: str) -> Sequence[str]:
    deps = props.get("__dependencies__")
    return tuple(_map(deps).get(key, ())) if deps else ()


def _ec2_instance(props: Mapping[str, Any], lookup: StackContext | None, _l: LambdaCatalog, aws: AwsPrices) -> Any:
    kind = props.get("instanceType")
    if not kind and props.get("launchTemplate") is not None:
        kind = _template(props, "launchTemplate", lookup).get("instanceType")
    price = _hourly(aws.ec2_hourly, kind, "instance type")
    return price * HOURS_PER_MONTH, f"1 x {kind}", "aws/ec2"


def _rds_instance(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    price = _hourly(aws.rds_hourly, props.get("instanceClass"), "instance class")
    multi_az = props.get("multiAz") is True
    factor = aws.rds_multi_az_factor if multi_az else Decimal(1)
    allocated = _num(props.get("allocatedStorage"), 0)
    storage = max(allocated, _num(props.get("maxAllocatedStorage"), 0))
    monthly = price * factor * HOURS_PER_MONTH + storage * aws.rds_gp3_gib_month * factor
    grown = " max" if storage > allocated else ""
    basis = f"{props['instanceClass']}{' (multi-AZ)' if multi_az else ''} + {_count(storage)}{grown} GiB"
    return monthly, basis, "aws/rds"


def _rds_cluster(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    scaling = _map(props.get("serverlessv2ScalingConfiguration"))
    if scaling:
        capacity = _num(scaling.get("maxCapacity"))
        return capacity * aws.aurora_acu_hourly * HOURS_PER_MONTH, f"{_count(capacity)} ACU (max capacity)", "aws/rds"
    return Decimal(0), "storage and I/O by usage; instances priced on their own", "aws/rds"


def _rds_cluster_instance(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    klass = props.get("instanceClass")
    if klass == "db.serverless":
        return Decimal(0), "db.serverless (capacity priced on the cluster)", "aws/rds"
    price = _hourly(aws.aurora_hourly, klass, "Aurora instance class")
    return price * HOURS_PER_MONTH, f"1 x {klass} (Aurora)", "aws/rds"


def _elasticache_group(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    price = _hourly(aws.elasticache_hourly, props.get("nodeType"), "node type")
    if props.get("numNodeGroups") is not None:
        nodes = _num(props.get("numNodeGroups")) * (_num(props.get("replicasPerNodeGroup"), 0) + 1)
    else:
        nodes = _num(props.get("numCacheClusters"), 1)
    return price * nodes * HOURS_PER_MONTH, f"{_count(nodes)} x {props['nodeType']}", "aws/elasticache"


def _elasticache_cluster(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    if props.get("replicationGroupId") and not props.get("nodeType"):
        return Decimal(0), "a member of its replication group (priced there)", "aws/elasticache"
    price = _hourly(aws.elasticache_hourly, props.get("nodeType"), "node type")
    nodes = _num(props.get("numCacheNodes"), 1)
    return price * nodes * HOURS_PER_MONTH, f"{_count(nodes)} x {props['nodeType']}", "aws/elasticache"


def _dearest(types: Iterable[Any], aws: AwsPrices) -> tuple[Decimal, str]:
    priced = [(_hourly(aws.ec2_hourly, t, "instance type"), str(t)) for t in types]
    if not priced:
        raise Unpriced("no instance type")
    return max(priced)


def _eks_node_group(props: Mapping[str, Any], lookup: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    types = _list(props.get("instanceTypes"))
    if not types and props.get("launchTemplate") is not None:
        kind = _template(props, "launchTemplate", lookup).get("instanceType")
        types = [kind] if kind else []
    if not types:
        types = [aws.eks_nodegroup_default_instance_type]
    price, kind = _dearest(types, aws)
    size = _num(_map(props.get("scalingConfig")).get("maxSize"))
    return price * size * HOURS_PER_MONTH, f"{_count(size)} x {kind} (max size)", "aws/eks"


def _autoscaling_group(props: Mapping[str, Any], lookup: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    mixed = _map(props.get("mixedInstancesPolicy"))
    overrides = _list(_map(mixed.get("launchTemplate")).get("overrides"))
    types = [_map(o).get("instanceType") for o in overrides if _map(o).get("instanceType")]
    if not types:
        key = next((k for k in ("launchTemplate", "launchConfiguration") if props.get(k) is not None), None)
        if key is None and mixed:
            key = "mixedInstancesPolicy"
        if key is None:
            raise Unpriced("it names no launch template, configuration or instance type")
        kind = _template(props, key, lookup).get("instanceType")
        types = [kind] if kind else []
    price, kind = _dearest(types, aws)
    size = _num(props.get("maxSize"))
    return price * size * HOURS_PER_MONTH, f"{_count(size)} x {kind} (max size)", "aws/ec2"


def _ebs_volume(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    kind = str(props.get("type") or "gp2")  # the EC2 API's default type
    per_gib = _hourly(aws.ebs_gib_month, kind, "volume type")
    size = _num(props.get("size"))
    monthly = size * per_gib
    iops = _num(props.get("iops"), 0)
    if kind in ("io1", "io2"):
        monthly += iops * aws.ebs_provisioned_iops_month
    if kind == "gp3":
        monthly += max(iops - 3000, Decimal(0)) * aws.gp3_extra_iops_month
        monthly += max(_num(props.get("throughput"), 125) - 125, Decimal(0)) * aws.gp3_extra_throughput_mibps_month
    return monthly, f"{_count(size)} GiB {kind}", "aws/ebs"


def _kubernetes_service(props: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices) -> Any:
    if _map(props.get("spec")).get("type") != "LoadBalancer":
        return Decimal(0), "no cloud resource", "kubernetes"
    return aws.load_balancer_hourly * HOURS_PER_MONTH, "a cloud load balancer (an NLB on EKS)", "kubernetes"


def _flat(attribute: str, service: str, hourly: bool) -> Pricer:
    def price(
        _p: Mapping[str, Any], _l: StackContext | None, _c: LambdaCatalog, aws: AwsPrices
    ) -> tuple[Decimal, str, str]:
        amount: Decimal = getattr(aws, attribute)
        return (amount * HOURS_PER_MONTH if hourly else amount), attribute.replace("_", " "), service

    return price


PRICERS: Mapping[str, Pricer] = {
    LAMBDA_INSTANCE: _lambda_instance,
    LAMBDA_FLEET: _lambda_fleet,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:rds/clusterInstance:ClusterInstance": _rds_cluster_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache_group,
    "aws:elasticache/cluster:Cluster": _elasticache_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:autoscaling/group:Group": _autoscaling_group,
    "aws:ebs/volume:Volume": _ebs_volume,
    "kubernetes:core/v1:Service": _kubernetes_service,
    "aws:eks/cluster:Cluster": _flat("eks_cluster_hourly", "aws/eks", hourly=True),
    "aws:ec2/natGateway:NatGateway": _flat("nat_gateway_hourly", "aws/vpc", hourly=True),
    "aws:ec2/eip:Eip": _flat("public_ipv4_hourly", "aws/vpc", hourly=True),
    "aws:lb/loadBalancer:LoadBalancer": _flat("load_balancer_hourly", "aws/elb", hourly=True),
    "aws:alb/loadBalancer:LoadBalancer": _flat("load_balancer_hourly", "aws/elb", hourly=True),
    "aws:elb/loadBalancer:LoadBalancer": _flat("load_balancer_hourly", "aws/elb", hourly=True),
    "aws:route53/healthCheck:HealthCheck": _flat("route53_health_check_month", "aws/route53", hourly=False),
    "aws:route53/zone:Zone": _flat("route53_zone_month", "aws/route53", hourly=False),
    "aws:kms/key:Key": _flat("kms_key_month", "aws/kms", hourly=False),
}


class _WithDependencies(Mapping[str, Any]):
    """The resource's properties plus its property dependencies under a key no provider uses."""

    def __init__(self, props: Mapping[str, Any], dependencies: Mapping[str, Sequence[str]]) -> None:
        self._props, self._deps = props, dependencies

    def __getitem__(self, key: str) -> Any:
        return self._deps if key == "__dependencies__" else self._props[key]

    def __iter__(self) -> Any:
        return iter(self._props)

    def __len__(self) -> int:
        return len(self._props)


def is_component(resource_type: str) -> bool:
    return resource_type.startswith(COMPONENT_PREFIXES)


def price(resource: ResourceLike, stack: StackContext | None = None) -> Verdict:
    """How one resource bills. Without `stack`, a price that needs another resource is `deferred`."""
    pricer = PRICERS.get(resource.resource_type)
    if pricer is None:
        found = load_billing_classes().classify(resource.resource_type)
        if found is None:
            return Verdict("unpriced", basis="its type is in neither the cost model nor policies/catalog/billing.json")
        category, reason = found
        return Verdict("unpriced" if category == "opaque" else category, basis=reason)
    props = _WithDependencies(resource.props, resource.property_dependencies)
    try:
        monthly, basis, group = pricer(props, stack, load_lambda_catalog(), load_aws_prices())
    except UnknownValueError as error:
        return Verdict("unknown", basis=".".join(error.props))
    except Unpriced as error:
        return Verdict("unpriced", basis=str(error))
    except Deferred as error:
        return Verdict("deferred", basis=str(error))
    return Verdict("priced", monthly, basis, group)


def estimate(resources: Iterable[ResourceLike]) -> CostReport:
    """Monthly cost of a stack's resources (components skipped), joins resolved within the stack."""
    resources = [r for r in resources if not is_component(r.resource_type)]
    by_urn = {r.urn: r for r in resources}
    recorded = set()
    for record in resources:
        if record.resource_type == LAMBDA_INSTANCE:
            try:
                recorded.add(str(record.props.get("launch_key")))
            except UnknownValueError:
                continue
    stack = StackContext(by_urn.get, frozenset(recorded))
    items: list[CostItem] = []
    unpriced: list[UnpricedItem] = []
    unknown: list[UnpricedItem] = []
    for resource in resources:
        verdict = price(resource, stack)
        if verdict.category == "priced":
            items.append(
                CostItem(
                    resource.urn,
                    resource.name,
                    resource.resource_type,
                    verdict.monthly_usd,
                    verdict.basis,
                    verdict.group,
                )
            )
        elif verdict.category in ("unpriced", "deferred"):
            unpriced.append(UnpricedItem(resource.urn, resource.name, resource.resource_type, verdict.basis))
        elif verdict.category == "unknown":
            unknown.append(UnpricedItem(resource.urn, resource.name, resource.resource_type, verdict.basis))
    return CostReport(tuple(items), tuple(unpriced), tuple(unknown))
