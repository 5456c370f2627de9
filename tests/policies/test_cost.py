"""Cost rules and the cost model: maxima priced, every billable resource priced or refused, types and
pool sizes within bounds. Resources are written with the SDKs' classes and the stack's own ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from policies.costing import estimate
from providers.lambda_cloud.resources import LambdaFleet, LambdaFleetArgs, LambdaInstance, LambdaInstanceArgs
from tests.policies.helpers import aws, evaluation, k8s, messages, program, with_
from tools.harness import StackRun
from tools.plan_cost import stack_cost

INSTANCE: dict[str, Any] = {
    "name": "sophia-prod-ai-core-0",
    "instance_type": "gpu_1x_gh200",
    "region": "us-west-1",
    "ssh_key_names": ["sophia-prod-ai-core"],
    "firewall_ruleset_ids": ["fw"],
    "tags": {"pool": "ai-core", "cost-centre": "sophia-ai-prod"},
}
BUDGET = "sophia-cost-stack-budget"
PRICED = "sophia-cost-resource-priced"


def gpus(count: int = 1, **changes: Any) -> StackRun:
    def build() -> None:
        for n in range(count):
            spec = with_(INSTANCE, name=f"i{n}", **changes)
            LambdaInstance(f"i{n}", LambdaInstanceArgs(**spec))

    return program(build)


def monthly(run: StackRun) -> Decimal:
    return stack_cost(run).monthly_usd


def test_budget_counts_gpu_and_aws_from_the_price_tables() -> None:
    # gh200 1.49/h and db.r6g.large 0.225/h multi-AZ (x2) with 100 GiB (x2): 1087.70 + 328.50 + 23.00
    def build() -> None:
        LambdaInstance("i", LambdaInstanceArgs(**INSTANCE))
        aws.rds.Instance("db", engine="postgres", instance_class="db.r6g.large", multi_az=True, allocated_storage=100)

    run = program(build)
    assert messages(BUDGET, run, {"monthlyBudgetUsd": 1440}) == []
    assert messages(BUDGET, run, {"monthlyBudgetUsd": 1439}) == [
        "estimated $1,439/month exceeds the budget of $1,439 (aws/rds $352, gpu-pool/ai-core $1,088)."
    ]


def test_an_unknown_instance_type_fails_closed() -> None:
    """Three 8-GPU instances of a type the catalog does not know used to count as $0."""
    run = gpus(3, instance_type="gpu_8x_b200")
    found = messages(BUDGET, run, {"monthlyBudgetUsd": 1000})
    assert found == [
        f"i{n} (pulumi-python:dynamic/lambda:Instance) bills but is not priced: instance type 'gpu_8x_b200' is not in "
        "policies/catalog/lambda_catalog.json."
        for n in range(3)
    ]
    assert (
        messages(PRICED, run)
        == ["it bills but is not priced: instance type 'gpu_8x_b200' is not in policies/catalog/lambda_catalog.json."]
        * 3
    )
    assert messages(PRICED, gpus(1)) == []


def test_named_exceptions_may_bill_unpriced() -> None:
    run = gpus(1, instance_type="gpu_8x_b200")
    assert messages(BUDGET, run, {"monthlyBudgetUsd": 1000, "allowUnpriced": ["i0"]}) == []
    assert messages(PRICED, run, also={BUDGET: {"monthlyBudgetUsd": 1000, "allowUnpriced": ["i0"]}}) == []


def test_a_type_the_cost_model_does_not_know_is_unpriced() -> None:
    run = program(lambda: aws.redshift.Cluster("warehouse", cluster_identifier="w", node_type="ra3.4xlarge"))
    assert messages(PRICED, run) == [
        "it bills but is not priced: its type is in neither the cost model nor policies/catalog/billing.json."
    ]
    assert len(messages(BUDGET, run, {"monthlyBudgetUsd": 10**6})) == 1


def test_helm_releases_are_opaque_to_the_budget() -> None:
    run = program(lambda: k8s.helm.v3.Release("monitoring", chart="kube-prometheus-stack", version="88.0.0"))
    assert len(messages(PRICED, run)) == 1
    config = {"monthlyBudgetUsd": 1000, "allowUnpriced": ["monitoring"]}
    assert messages(BUDGET, run, config) == []


def test_free_and_usage_types_pass() -> None:
    def build() -> None:
        aws.iam.Role("r", assume_role_policy="{}")
        aws.s3.Bucket("b")
        k8s.core.v1.ConfigMap("cm", data={"a": "b"})

    run = program(build)
    assert messages(PRICED, run) == []
    assert monthly(run) == 0


NODE_GROUP: dict[str, Any] = {
    "cluster_name": "eks",
    "node_role_arn": "arn:aws:iam::1:role/nodes",
    "subnet_ids": ["subnet-1"],
    "instance_types": ["m6i.large", "r6i.xlarge"],
    "scaling_config": {"desired_size": 1, "min_size": 1, "max_size": 6},
}


def test_node_groups_are_priced_at_max_size_of_their_dearest_type() -> None:
    run = program(lambda: aws.eks.NodeGroup("ng", **NODE_GROUP))
    [item] = stack_cost(run).items
    assert item.basis == "6 x r6i.xlarge (max size)"
    assert item.monthly_usd == Decimal("0.252") * 6 * 730


def test_node_groups_without_types_price_the_eks_default_or_their_launch_template() -> None:
    default = program(lambda: aws.eks.NodeGroup("ng", **with_(NODE_GROUP, instance_types=None)))
    assert stack_cost(default).items[0].basis == "6 x t3.medium (max size)"

    def with_template() -> None:
        template = aws.ec2.LaunchTemplate("lt", instance_type="r6i.2xlarge")
        aws.eks.NodeGroup(
            "ng", **with_(NODE_GROUP, instance_types=None), launch_template={"id": template.id, "version": "$Latest"}
        )

    run = program(with_template)
    assert [i.basis for i in stack_cost(run).items] == ["6 x r6i.2xlarge (max size)"]
    assert messages(PRICED, run) == []  # resource level: the template is priced with the stack


def test_autoscaling_groups_at_max_and_launch_templates_through_them() -> None:
    def build(max_size: int) -> Any:
        def make() -> None:
            template = aws.ec2.LaunchTemplate("lt", instance_type="m6i.xlarge")
            aws.autoscaling.Group(
                "asg",
                min_size=1,
                max_size=max_size,
                desired_capacity=1,
                launch_template={"id": template.id, "version": "$Latest"},
                vpc_zone_identifiers=["subnet-1"],
            )

        return program(make)

    assert monthly(build(10)) == Decimal("0.192") * 10 * 730
    assert monthly(build(10)) > monthly(build(2))


def test_autoscaling_group_overrides_price_the_dearest() -> None:
    def build() -> None:
        aws.autoscaling.Group(
            "asg",
            min_size=0,
            max_size=4,
            mixed_instances_policy={
                "launch_template": {
                    "launch_template_specification": {"launch_template_id": "lt-1"},
                    "overrides": [{"instance_type": "c6i.large"}, {"instance_type": "r6i.2xlarge"}],
                }
            },
            vpc_zone_identifiers=["subnet-1"],
        )

    assert stack_cost(program(build)).items[0].basis == "4 x r6i.2xlarge (max size)"


def test_aurora_cluster_instances_and_serverless_capacity() -> None:
    def build() -> None:
        aws.rds.Cluster(
            "aurora",
            engine="aurora-postgresql",
            serverlessv2_scaling_configuration={"max_capacity": 8, "min_capacity": 0.5},
        )
        aws.rds.ClusterInstance(
            "aurora-1", cluster_identifier="aurora", instance_class="db.r6g.large", engine="aurora-postgresql"
        )
        aws.rds.ClusterInstance(
            "aurora-2", cluster_identifier="aurora", instance_class="db.serverless", engine="aurora-postgresql"
        )

    report = stack_cost(program(build))
    assert {i.name: i.basis for i in report.items} == {
        "aurora": "8 ACU (max capacity)",
        "aurora-1": "1 x db.r6g.large (Aurora)",
        "aurora-2": "db.serverless (capacity priced on the cluster)",
    }
    assert report.monthly_usd == (Decimal("0.12") * 8 + Decimal("0.26")) * 730
    unknown_class = program(
        lambda: aws.rds.ClusterInstance(
            "a", cluster_identifier="c", instance_class="db.x2g.16xlarge", engine="aurora-postgresql"
        )
    )
    assert len(messages(PRICED, unknown_class)) == 1


def test_rds_storage_at_its_autoscaling_maximum() -> None:
    run = program(
        lambda: aws.rds.Instance(
            "db", engine="postgres", instance_class="db.t4g.medium", allocated_storage=100, max_allocated_storage=1000
        )
    )
    assert stack_cost(run).items[0].basis == "db.t4g.medium + 1000 max GiB"


def test_a_fleet_member_without_a_record_is_priced_and_a_recorded_one_not_twice() -> None:
    def build(extra: bool) -> Any:
        def make() -> None:
            record = LambdaInstance("i0", LambdaInstanceArgs(**INSTANCE))
            members = [record.fleet_member({"us-west-1": ["fw"]}, "ai-core")]
            if extra:
                members.append(
                    {**INSTANCE, "name": "stray", "launch_key": "0" * 24, "instance_type": "gpu_8x_h100_sxm5"}
                )
            LambdaFleet("fleet", LambdaFleetArgs(members=members))

        return program(make)

    one = Decimal("1.49") * 730
    assert monthly(build(extra=False)) == one
    assert monthly(build(extra=True)) == one + Decimal("23.92") * 730


def test_unknown_price_inputs_are_reported_per_resource_during_preview() -> None:
    def build() -> None:
        template = aws.ec2.LaunchTemplate("lt", instance_type="m6i.large")
        aws.ec2.Instance("i", ami="ami-1", instance_type=template.arn.apply(lambda _: "m6i.large"))
        LambdaInstance("gpu", LambdaInstanceArgs(**INSTANCE))

    run = program(build, first_preview=True)
    result = evaluation(BUDGET, run, {"monthlyBudgetUsd": 10**6})
    assert result.violations == ()
    assert result.skipped == ((BUDGET, "i: the price input instanceType can't be known during preview"),)
    assert evaluation(PRICED, run).skipped == ((PRICED, "i: instanceType can't be known during preview"),)


TYPES = {"allowedInstanceTypes": {"ai-core": ["gpu_1x_gh200"], "dev": ["gpu_1x_a10"]}}


def test_instance_types_per_pool() -> None:
    policy = "lambda-cloud-instance-type-allowed"
    assert messages(policy, gpus(), TYPES) == []
    assert messages(policy, gpus(instance_type="gpu_8x_h100_sxm5"), TYPES) == [
        "gpu_8x_h100_sxm5 is not approved for pool ai-core (gpu_1x_gh200)."
    ]
    assert messages(policy, gpus(tags={"pool": "batch", "cost-centre": "c"}), TYPES) == [
        "pool 'batch' has no approved instance types."
    ]


def test_pool_bounds_count_each_instance_once() -> None:
    policy = "sophia-gpupool-size-bounds"
    config = {"poolBounds": {"ai-core": {"min": 2, "max": 3}}}
    assert messages(policy, gpus(3), config) == []
    assert messages(policy, gpus(4), config) == ["pool ai-core runs 4 instances; bounds are 2-3."]
    assert messages(policy, gpus(1), config) == ["pool ai-core runs 1 instances; bounds are 2-3."]

    def recorded_and_launched() -> None:
        records = [LambdaInstance(f"i{n}", LambdaInstanceArgs(**with_(INSTANCE, name=f"i{n}"))) for n in range(3)]
        LambdaFleet(
            "fleet", LambdaFleetArgs(members=[r.fleet_member({"us-west-1": ["fw"]}, "ai-core") for r in records])
        )

    assert messages(policy, program(recorded_and_launched), config) == []


def test_dev_pool_must_hibernate() -> None:
    policy = "lambda-cloud-instance-off-hours"
    dev_tags = {"pool": "dev", "cost-centre": "c"}
    scheduled = {**dev_tags, "off-hours": "stop 19:00 start 08:00 UTC weekends-off"}
    assert messages(policy, gpus(tags=scheduled)) == []
    assert messages(policy, gpus()) == []  # not a hibernating pool
    assert messages(policy, gpus(tags=dev_tags)) == ["pool dev hibernates but the instance has no off-hours tag."]


def test_gpu_cost_tags() -> None:
    policy = "lambda-cloud-instance-cost-tags"
    assert messages(policy, gpus()) == []
    assert messages(policy, gpus(tags={"owner": "x"})) == ["missing tags pool, cost-centre."]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: aws.rds.Instance("db", engine="postgres", instance_class="db.r6g.large"), []),
        (
            lambda: aws.rds.Instance("db", engine="postgres", instance_class="db.x2g.16xlarge"),
            ["db.x2g.16xlarge is not an allowed class."],
        ),
        (
            lambda: aws.eks.NodeGroup("ng", **with_(NODE_GROUP, instance_types=["m6i.large", "p5.48xlarge"])),
            ["p5.48xlarge is not an allowed class."],
        ),
        (lambda: aws.ec2.LaunchTemplate("lt", instance_type="p5.48xlarge"), ["p5.48xlarge is not an allowed class."]),
        (
            lambda: aws.rds.ClusterInstance(
                "a", cluster_identifier="c", instance_class="db.r7g.16xlarge", engine="aurora-postgresql"
            ),
            ["db.r7g.16xlarge is not an allowed class."],
        ),
    ],
    ids=["allowed", "rds", "node-group", "launch-template", "aurora"],
)
def test_aws_classes_from_the_allow_list(build: Any, expected: list[str]) -> None:
    assert messages("aws-compute-instance-class-allowed", program(build)) == expected


def test_the_plan_and_the_budget_use_one_model() -> None:
    run = gpus(2)
    assert estimate([]).monthly_usd == 0
    assert stack_cost(run).monthly_usd == Decimal("1.49") * 730 * 2
    assert messages(BUDGET, run, {"monthlyBudgetUsd": float(Decimal("1.49") * 730 * 2) - 1}) != []
