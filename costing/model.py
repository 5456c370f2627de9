"""Price each resource from its engine-shaped inputs; one source of prices for the plan and the policies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from catalog.aws_prices import AwsPrices, load_aws_prices
from catalog.lambda_catalog import HOURS_PER_MONTH, LambdaCatalog, load_lambda_catalog

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"


class ResourceLike(Protocol):
    """What the model needs of a resource: the harness's records and policy resources both fit."""

    @property
    def urn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def resource_type(self) -> str: ...

    @property
    def props(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class CostItem:
    urn: str
    name: str
    resource_type: str
    monthly_usd: Decimal
    basis: str
    """How the figure was reached, e.g. '2 x db.r6g.large (multi-AZ) + 500 GiB gp3'."""
    group: str
    """What the cost is booked to: a GPU pool's name, or the resource type's service."""

    @property
    def hourly_usd(self) -> Decimal:
        return self.monthly_usd / HOURS_PER_MONTH


@dataclass(frozen=True)
class CostReport:
    items: tuple[CostItem, ...]
    unpriced: tuple[str, ...] = field(default=())
    """URNs of resources that cost money but whose price inputs are unknown or not in the tables."""

    @property
    def monthly_usd(self) -> Decimal:
        return sum((i.monthly_usd for i in self.items), Decimal(0))

    @property
    def hourly_usd(self) -> Decimal:
        return self.monthly_usd / HOURS_PER_MONTH

    def by_group(self) -> dict[str, Decimal]:
        groups: dict[str, Decimal] = {}
        for item in self.items:
            groups[item.group] = groups.get(item.group, Decimal(0)) + item.monthly_usd
        return dict(sorted(groups.items()))


Pricer = Callable[[Mapping[str, Any], LambdaCatalog, AwsPrices], tuple[Decimal, str, str] | None]


def _num(value: Any, default: float = 0) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Decimal(str(default))
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(str(default))


def _lambda_instance(
    props: Mapping[str, Any], lambdas: LambdaCatalog, _aws: AwsPrices
) -> tuple[Decimal, str, str] | None:
    spec = lambdas.instance_types.get(str(props.get("instance_type")))
    if spec is None:
        return None
    pool = str((props.get("tags") or {}).get("pool", "unpooled"))
    return spec.price_usd_per_hour * HOURS_PER_MONTH, f"1 x {spec.name}", f"gpu-pool/{pool}"


def _ec2_instance(props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str] | None:
    price = aws.ec2_hourly.get(str(props.get("instanceType")))
    if price is None:
        return None
    return price * HOURS_PER_MONTH, f"1 x {props['instanceType']}", "aws/ec2"


def _rds_instance(props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str] | None:
    price = aws.rds_hourly.get(str(props.get("instanceClass")))
    if price is None:
        return None
    multi_az = bool(props.get("multiAz"))
    factor = aws.rds_multi_az_factor if multi_az else Decimal(1)
    storage = _num(props.get("allocatedStorage"))
    monthly = price * factor * HOURS_PER_MONTH + storage * aws.rds_gp3_gib_month * factor
    basis = f"{props['instanceClass']}{' (multi-AZ)' if multi_az else ''} + {storage} GiB"
    return monthly, basis, "aws/rds"


def _elasticache_group(
    props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices
) -> tuple[Decimal, str, str] | None:
    price = aws.elasticache_hourly.get(str(props.get("nodeType")))
    if price is None:
        return None
    if props.get("numNodeGroups") is not None:
        nodes = _num(props.get("numNodeGroups"), 1) * (_num(props.get("replicasPerNodeGroup"), 0) + 1)
    else:
        nodes = _num(props.get("numCacheClusters"), 1)
    return price * nodes * HOURS_PER_MONTH, f"{nodes} x {props['nodeType']}", "aws/elasticache"


def _eks_node_group(
    props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices
) -> tuple[Decimal, str, str] | None:
    types = props.get("instanceTypes") or []
    price = aws.ec2_hourly.get(str(types[0])) if types else None
    if price is None:
        return None
    desired = _num((props.get("scalingConfig") or {}).get("desiredSize"), 1)
    return price * desired * HOURS_PER_MONTH, f"{desired} x {types[0]}", "aws/eks"


def _ebs_volume(props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str] | None:
    size = _num(props.get("size"))
    return size * aws.gp3_gib_month, f"{size} GiB gp3", "aws/ebs"


def today() -> date:
    """The day the estimate is for (a function, so tests can fix it)."""
    return date.today()


def _eks_cluster(props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str]:
    """A cluster hour, at the extended-support rate once the configured version is past its end of
    standard support (the version's own price, not the upgrade someone may plan)."""
    version = str(props.get("version"))
    ends = aws.eks_standard_support_end.get(version)
    if ends is not None and today() >= ends:
        basis = f"EKS {version} in extended support since {ends.isoformat()}"
        return aws.eks_extended_support_hourly * HOURS_PER_MONTH, basis, "aws/eks"
    return aws.eks_cluster_hourly * HOURS_PER_MONTH, f"EKS {version} in standard support", "aws/eks"


HEALTH_CHECK_OPTIONS = ("HTTPS", "string matching", "fast interval", "latency measurement")


def health_check_options(props: Mapping[str, Any]) -> list[str]:
    """The priced options a health check uses (Route 53 pricing; Infracost prices the same four)."""
    kind = str(props.get("type", ""))
    options = {
        "HTTPS": kind.startswith("HTTPS"),
        "string matching": kind.endswith("STR_MATCH"),
        "fast interval": _num(props.get("requestInterval"), 30) == 10,
        "latency measurement": props.get("measureLatency") is True,
    }
    return [option for option in HEALTH_CHECK_OPTIONS if options[option]]


def _health_check(props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str]:
    """An endpoint check is priced as a non-AWS endpoint (the platform's endpoints are Lambda Cloud
    hosts and names Route 53 cannot tell apart), plus each option it uses."""
    kind = str(props.get("type", ""))
    if kind in ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL"):
        return aws.route53_health_check_aws_month, f"{kind.lower()} health check", "aws/route53"
    options = health_check_options(props)
    monthly = aws.route53_health_check_month + aws.route53_health_check_option_month * len(options)
    return monthly, " + ".join(["non-AWS endpoint check", *options]), "aws/route53"


def _flat(attribute: str, service: str, hourly: bool) -> Pricer:
    def price(_props: Mapping[str, Any], _lambdas: LambdaCatalog, aws: AwsPrices) -> tuple[Decimal, str, str]:
        amount: Decimal = getattr(aws, attribute)
        return (amount * HOURS_PER_MONTH if hourly else amount), attribute.replace("_", " "), service

    return price


PRICERS: Mapping[str, Pricer] = {
    LAMBDA_INSTANCE: _lambda_instance,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache_group,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:ebs/volume:Volume": _ebs_volume,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:ec2/natGateway:NatGateway": _flat("nat_gateway_hourly", "aws/vpc", hourly=True),
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/zone:Zone": _flat("route53_zone_month", "aws/route53", hourly=False),
    "aws:kms/key:Key": _flat("kms_key_month", "aws/kms", hourly=False),
}


def estimate(resources: Iterable[ResourceLike]) -> CostReport:
    """Monthly cost of every priced resource; usage-priced ones (S3 bytes, traffic) are not estimated."""
    lambdas, aws = load_lambda_catalog(), load_aws_prices()
    items: list[CostItem] = []
    unpriced: list[str] = []
    for resource in resources:
        pricer = PRICERS.get(resource.resource_type)
        if pricer is None:
            continue
        try:
            priced = pricer(resource.props, lambdas, aws)
        except Exception:  # noqa: BLE001 - an unknown (preview) input must not stop the estimate
            priced = None
        if priced is None:
            unpriced.append(resource.urn)
            continue
        monthly, basis, group = priced
        items.append(CostItem(resource.urn, resource.name, resource.resource_type, monthly, basis, group))
    return CostReport(tuple(items), tuple(unpriced))
