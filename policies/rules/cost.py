"""Cost rules: the stack within its budget, sizes and types within bounds, idle pools hibernating.

The monthly cost comes from `costing.estimate`, the same model `make plan` prints.
"""

from __future__ import annotations

from decimal import Decimal

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policies.catalog.aws_prices import load_aws_prices
from policies.common import Category, Rule, as_list, config_of, resource_policy, stack_policy
from policies.costing import estimate

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"

BUDGET = Rule(
    "sophia-cost-stack-budget",
    "The stack's estimated monthly cost must stay within its budget.",
    Severity.HIGH,
    "Shrink or stop pools (desired), pick cheaper types, or raise sophia:monthlyBudgetUsd with approval.",
    Category.BUDGET,
    config={"monthlyBudgetUsd": {"type": "number", "exclusiveMinimum": 0}},
    required=("monthlyBudgetUsd",),
)


def _budget(args: StackValidationArgs, report: ReportViolation) -> None:
    budget = Decimal(str(config_of(args, BUDGET)["monthlyBudgetUsd"]))
    report_ = estimate(args.resources)
    if report_.monthly_usd > budget:
        groups = ", ".join(f"{group} ${cost:,.0f}" for group, cost in report_.by_group().items())
        report(f"estimated ${report_.monthly_usd:,.0f}/month exceeds the budget of ${budget:,.0f} ({groups}).", None)


def _pool(args: ResourceValidationArgs) -> str | None:
    pool = (args.props.get("tags") or {}).get("pool")
    return str(pool) if pool else None


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


def _instance_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = config_of(args, INSTANCE_TYPES)["allowedInstanceTypes"]
    pool = _pool(args)
    instance_type = args.props.get("instance_type")
    if pool is None or pool not in allowed:
        report(f"pool {pool!r} has no approved instance types.", None)
    elif instance_type not in allowed[pool]:
        report(f"{instance_type} is not approved for pool {pool} ({', '.join(allowed[pool])}).", None)


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


def _pool_bounds(args: StackValidationArgs, report: ReportViolation) -> None:
    bounds = config_of(args, POOL_BOUNDS)["poolBounds"]
    counts: dict[str, int] = dict.fromkeys(bounds, 0)
    for resource in args.resources:
        if resource.resource_type == LAMBDA_INSTANCE:
            pool = str((resource.props.get("tags") or {}).get("pool"))
            counts[pool] = counts.get(pool, 0) + 1
    for pool, count in sorted(counts.items()):
        if pool not in bounds:
            report(f"pool {pool} runs {count} instances but has no bounds in the policy config.", None)
        else:
            # Config numbers arrive through protobuf as floats.
            low, high = int(bounds[pool]["min"]), int(bounds[pool]["max"])
            if not low <= count <= high:
                report(f"pool {pool} runs {count} instances; bounds are {low}-{high}.", None)


OFF_HOURS = Rule(
    "lambda-cloud-instance-off-hours",
    "Instances of hibernating pools (dev) must carry an off-hours schedule.",
    Severity.MEDIUM,
    "Give the pool an offHours schedule in sophia:gpuPools (it becomes the instances' off-hours tag).",
    Category.BUDGET,
    config={"hibernatingPools": {"type": "array", "items": {"type": "string"}, "default": ["dev"]}},
)


def _off_hours(args: ResourceValidationArgs, report: ReportViolation) -> None:
    hibernating = _pool(args) in config_of(args, OFF_HOURS)["hibernatingPools"]
    if hibernating and not (args.props.get("tags") or {}).get("off-hours"):
        report(f"pool {_pool(args)} hibernates but the instance has no off-hours tag.", None)


def _priced_classes() -> list[str]:
    prices = load_aws_prices()
    return sorted({*prices.ec2_hourly, *prices.rds_hourly, *prices.elasticache_hourly})


AWS_CLASSES = Rule(
    "aws-compute-instance-class-allowed",
    "AWS instance, database and cache node classes must come from the allow-list.",
    Severity.MEDIUM,
    "Use an allowed class (by default those in policies/catalog/aws_prices.json, which the cost model can price).",
    Category.BUDGET,
    config={"allowedClasses": {"type": "array", "items": {"type": "string"}, "default": _priced_classes()}},
)
CLASS_PROPERTY = {
    "aws:ec2/instance:Instance": "instanceType",
    "aws:rds/instance:Instance": "instanceClass",
    "aws:elasticache/replicationGroup:ReplicationGroup": "nodeType",
    "aws:eks/nodeGroup:NodeGroup": "instanceTypes",
}


def _aws_classes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = set(config_of(args, AWS_CLASSES)["allowedClasses"])
    value = args.props.get(CLASS_PROPERTY[args.resource_type])
    for chosen in as_list(value):
        if chosen not in allowed:
            report(f"{chosen} is not an allowed class.", None)


COST_TAGS = Rule(
    "lambda-cloud-instance-cost-tags",
    "Every GPU instance must be tagged with its pool and cost centre.",
    Severity.LOW,
    "Create instances through GpuPool, which sets the pool and cost-centre tags.",
    Category.HYGIENE,
)


def _cost_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    tags = args.props.get("tags") or {}
    missing = [key for key in ("pool", "cost-centre") if not tags.get(key)]
    if missing:
        report(f"missing tags {', '.join(missing)}.", None)


POLICIES = [
    stack_policy(BUDGET, _budget),
    resource_policy(INSTANCE_TYPES, [LAMBDA_INSTANCE], _instance_types),
    stack_policy(POOL_BOUNDS, _pool_bounds),
    resource_policy(OFF_HOURS, [LAMBDA_INSTANCE], _off_hours),
    resource_policy(AWS_CLASSES, list(CLASS_PROPERTY), _aws_classes),
    resource_policy(COST_TAGS, [LAMBDA_INSTANCE], _cost_tags),
]
