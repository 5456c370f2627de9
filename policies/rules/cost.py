"""Cost rules: the stack within its budget at its maxima, every billable resource priced, sizes and
types within bounds, idle pools hibernating.

Prices come from `policies.costing`, the same model `make plan` prints. The budget fails closed: a
resource that bills but cannot be priced (a type or class not in the tables, an opaque Helm release)
is a violation unless the budget policy's `allowUnpriced` names it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pulumi_policy import Severity

from policies.catalog.aws_prices import load_aws_prices
from policies.common import Category, Ctx, Rule
from policies.costing import estimate, price
from policies.model.lambda_cloud import LAMBDA_FLEET, Launch
from policies.model.subject import StackView, Subject
from policies.model.values import Undetermined, dig, items, mapping

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
LAUNCHES = (LAMBDA_INSTANCE, LAMBDA_FLEET)


def prefix(launch: Launch) -> str:
    """'' for a record (the message is about the resource itself), `member 0 (name): ` for a fleet's."""
    return "" if launch.where == "instance" else f"{launch.where}: "


BUDGET = Rule(
    "sophia-cost-stack-budget",
    "The stack's estimated monthly cost, at its maxima, must stay within its budget, and every billable "
    "resource must be priced.",
    Severity.HIGH,
    "Shrink pools or maximum sizes, pick cheaper types, price a new type in policies/catalog/, or raise "
    "sophia:monthlyBudgetUsd with approval; name a resource in allowUnpriced only with a cost estimate.",
    Category.BUDGET,
    config={
        "monthlyBudgetUsd": {"type": "number", "exclusiveMinimum": 0},
        "allowUnpriced": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Resources (by name or type) that may bill without a price: each an approved exception.",
        },
    },
    required=("monthlyBudgetUsd",),
)


def _excepted(name: str, resource_type: str, allowed: set[str]) -> bool:
    return name in allowed or resource_type in allowed


def _budget(view: StackView, ctx: Ctx) -> None:
    budget = Decimal(str(ctx.config["monthlyBudgetUsd"]))
    allowed = {str(v) for v in ctx.config.get("allowUnpriced", [])}
    report = estimate(view.custom)
    for item in report.unpriced:
        if not _excepted(item.name, item.resource_type, allowed):
            ctx.violation(f"{item.name} ({item.resource_type}) bills but is not priced: {item.reason}.", item.urn)
    for item in report.unknown:
        ctx.undetermined(f"{item.name}: the price input {Undetermined(item.reason)}", item.urn)
    if report.monthly_usd > budget:
        groups = ", ".join(f"{group} ${cost:,.0f}" for group, cost in report.by_group().items())
        ctx.violation(f"estimated ${report.monthly_usd:,.0f}/month exceeds the budget of ${budget:,.0f} ({groups}).")


PRICED = Rule(
    "sophia-cost-resource-priced",
    "Every resource that bills must be priced by the cost model before it is created.",
    Severity.HIGH,
    "Use a type, class or size in policies/catalog/ (or add its price there with its source); classify a new "
    "resource type in policies/catalog/billing.json; or name it in the budget policy's allowUnpriced.",
    Category.BUDGET,
)


def _priced(subject: Subject, ctx: Ctx) -> None:
    verdict = price(subject)
    if verdict.category == "unknown":
        raise Undetermined(verdict.basis)
    if verdict.category == "unpriced":
        allowed = {str(v) for v in (ctx.settings.configs.get(BUDGET.name) or {}).get("allowUnpriced", [])}
        if not _excepted(subject.name, subject.resource_type, allowed):
            ctx.violation(f"it bills but is not priced: {verdict.basis}.")


INSTANCE_TYPES = Rule(
    "lambda-cloud-instance-type-allowed",
    "Each GPU pool may only run its approved instance types.",
    Severity.HIGH,
    "Use a type approved for the pool, or add it to allowedInstanceTypes in the policy config.",
    Category.BUDGET,
    config={
        "allowedInstanceTypes": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "pool name -> instance types it may use",
        }
    },
    required=("allowedInstanceTypes",),
)


def _instance_types(subject: Subject, ctx: Ctx) -> None:
    allowed = ctx.config["allowedInstanceTypes"]

    def check(launch: Launch) -> None:
        pool = launch.pool
        if pool is None or pool not in allowed:
            ctx.violation(f"{prefix(launch)}pool {pool!r} has no approved instance types.")
        elif launch.instance_type not in allowed[pool]:
            approved = ", ".join(allowed[pool])
            ctx.violation(f"{prefix(launch)}{launch.instance_type} is not approved for pool {pool} ({approved}).")

    ctx.each_launch(subject, check)


POOL_BOUNDS = Rule(
    "sophia-gpupool-size-bounds",
    "Each GPU pool's instance count must stay within its min and max.",
    Severity.HIGH,
    "Set desired within [min, max] in sophia:gpuPools, or change the bounds in the policy config.",
    Category.BUDGET,
    config={
        "poolBounds": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"min": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 0}},
                "required": ["min", "max"],
            },
        }
    },
    required=("poolBounds",),
)


def _pool_bounds(view: StackView, ctx: Ctx) -> None:
    bounds = ctx.config["poolBounds"]
    launched: dict[str, set[str]] = {pool: set() for pool in bounds}

    def count(subject: Subject) -> None:
        def one(launch: Launch) -> None:
            # A fleet member and its record are one instance: counted once, by launch key.
            launched.setdefault(str(launch.pool), set()).add(launch.launch_key or f"{subject.urn}/{launch.where}")

        ctx.each_launch(subject, one)

    ctx.each(view.of_type(*LAUNCHES), count)
    counts = {pool: len(keys) for pool, keys in launched.items()}
    for pool, found in sorted(counts.items()):
        if pool not in bounds:
            ctx.violation(f"pool {pool} runs {found} instances but has no bounds in the policy config.")
        else:
            # Config numbers arrive through protobuf as floats.
            low, high = int(bounds[pool]["min"]), int(bounds[pool]["max"])
            if not low <= found <= high:
                ctx.violation(f"pool {pool} runs {found} instances; bounds are {low}-{high}.")


OFF_HOURS = Rule(
    "lambda-cloud-instance-off-hours",
    "Instances of hibernating pools (dev) must carry an off-hours schedule.",
    Severity.MEDIUM,
    "Give the pool an offHours schedule in sophia:gpuPools (it becomes the instances' off-hours tag).",
    Category.BUDGET,
    config={"hibernatingPools": {"type": "array", "items": {"type": "string"}, "default": ["dev"]}},
)


def _off_hours(subject: Subject, ctx: Ctx) -> None:
    def check(launch: Launch) -> None:
        if launch.pool in ctx.config["hibernatingPools"] and not launch.tags.get("off-hours"):
            ctx.violation(f"{prefix(launch)}pool {launch.pool} hibernates but the instance has no off-hours tag.")

    ctx.each_launch(subject, check)


def _priced_classes() -> list[str]:
    prices = load_aws_prices()
    return sorted({*prices.ec2_hourly, *prices.rds_hourly, *prices.aurora_hourly, *prices.elasticache_hourly})


AWS_CLASSES = Rule(
    "aws-compute-instance-class-allowed",
    "AWS instance, database and cache node classes must come from the allow-list.",
    Severity.MEDIUM,
    "Use an allowed class (by default those in policies/catalog/aws_prices.json, which the cost model can price).",
    Category.BUDGET,
    config={"allowedClasses": {"type": "array", "items": {"type": "string"}, "default": _priced_classes()}},
)


def compute_classes(subject: Subject) -> list[Any]:
    """Every instance, database or cache class the resource may launch."""
    props = subject.props
    kind = subject.resource_type
    if kind in ("aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"):
        return [props.get("instanceType")] if props.get("instanceType") else []
    if kind in ("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"):
        klass = props.get("instanceClass")
        return [klass] if klass and klass != "db.serverless" else []
    if kind in ("aws:elasticache/replicationGroup:ReplicationGroup", "aws:elasticache/cluster:Cluster"):
        return [props.get("nodeType")] if props.get("nodeType") else []
    if kind == "aws:eks/nodeGroup:NodeGroup":
        return list(items(props.get("instanceTypes")))
    if kind == "aws:autoscaling/group:Group":
        overrides = items(dig(props, "mixedInstancesPolicy", "launchTemplate", "overrides"))
        return [mapping(o).get("instanceType") for o in overrides if mapping(o).get("instanceType")]
    return []


CLASS_TYPES = (
    "aws:ec2/instance:Instance",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:rds/instance:Instance",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:elasticache/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:autoscaling/group:Group",
)


def _aws_classes(subject: Subject, ctx: Ctx) -> None:
    allowed = set(ctx.config["allowedClasses"])
    for chosen in compute_classes(subject):
        if chosen not in allowed:
            ctx.violation(f"{chosen} is not an allowed class.")


COST_TAGS = Rule(
    "lambda-cloud-instance-cost-tags",
    "Every GPU instance must be tagged with its pool and cost centre.",
    Severity.LOW,
    "Create instances through GpuPool, which sets the pool and cost-centre tags.",
    Category.HYGIENE,
)


def _cost_tags(subject: Subject, ctx: Ctx) -> None:
    def check(launch: Launch) -> None:
        missing = [key for key in ("pool", "cost-centre") if not launch.tags.get(key)]
        if missing:
            ctx.violation(f"{prefix(launch)}missing tags {', '.join(missing)}.")

    ctx.each_launch(subject, check)


POLICIES = [
    BUDGET.stack(_budget),
    PRICED.resource(lambda s: not s.is_component, _priced),
    INSTANCE_TYPES.resource(LAUNCHES, _instance_types),
    POOL_BOUNDS.stack(_pool_bounds),
    OFF_HOURS.resource(LAUNCHES, _off_hours),
    AWS_CLASSES.resource(CLASS_TYPES, _aws_classes),
    COST_TAGS.resource(LAUNCHES, _cost_tags),
]
