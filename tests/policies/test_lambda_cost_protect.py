"""Lambda Cloud, cost and protect rules: a compliant baseline passes; each broken property fails."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.helpers import DEFAULT_TAGS, aws_provider, aws_res, changed, messages, res, run_of

INSTANCE = "pulumi-python:dynamic/lambda:Instance"
RULESET = "pulumi-python:dynamic/lambda:FirewallRuleset"
SSH_KEY = "pulumi-python:dynamic/lambda:SshKey"
INSTANCE_OK: dict[str, Any] = {
    "name": "sophia-prod-ai-core-0",
    "instance_type": "gpu_1x_gh200",
    "region": "us-west-1",
    "fallback_regions": ["us-west-2"],
    "ssh_key_names": ["sophia-prod-ai-core"],
    "tags": {"pool": "ai-core", "cost-centre": "sophia-ai-prod", "owner": "platform-infra"},
}
SSH_RULE = {"protocol": "tcp", "port_range": [22.0, 22.0], "source_network": "203.0.113.0/24", "description": "ssh"}


def ruleset(*rules: dict[str, Any]) -> Any:
    return run_of(res(RULESET, "fw", {"name": "fw", "region": "us-west-1", "rules": list(rules)}))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({**SSH_RULE, "source_network": "0.0.0.0/0"}, "rule 0 opens SSH to 0.0.0.0/0."),
        ({**SSH_RULE, "port_range": [1.0, 1024.0], "source_network": "0.0.0.0/0"}, "rule 0 opens SSH to 0.0.0.0/0."),
        ({"protocol": "all", "source_network": "0.0.0.0/0", "description": "x"}, "rule 0 opens SSH to 0.0.0.0/0."),
    ],
)
def test_no_public_ssh(rule: dict[str, Any], expected: str) -> None:
    policy = "lambda-cloud-firewall-no-public-ssh"
    https = {**SSH_RULE, "port_range": [443.0, 443.0], "source_network": "0.0.0.0/0"}
    assert messages(policy, ruleset(SSH_RULE, https)) == []
    assert messages(policy, ruleset(rule)) == [expected]


def test_no_public_data_ports() -> None:
    policy = "lambda-cloud-firewall-no-public-data-ports"
    https = {**SSH_RULE, "port_range": [443.0, 443.0], "source_network": "0.0.0.0/0"}
    assert messages(policy, ruleset(SSH_RULE, https)) == []
    postgres = {**SSH_RULE, "port_range": [5432.0, 5432.0], "source_network": "0.0.0.0/0"}
    assert messages(policy, ruleset(SSH_RULE, postgres)) == ["rule 1 opens 5432 to 0.0.0.0/0."]
    wide = {**SSH_RULE, "port_range": [6000.0, 7000.0], "source_network": "0.0.0.0/0"}
    assert messages(policy, ruleset(wide)) == ["rule 0 opens 6333-6335, 6379 to 0.0.0.0/0."]
    private = {**postgres, "source_network": "198.51.100.0/24"}
    assert messages(policy, ruleset(private)) == []


def test_allowed_regions_include_fallbacks() -> None:
    policy = "lambda-cloud-instance-allowed-region"
    config = {"allowedRegions": ["us-west-1", "us-west-2"]}
    assert messages(policy, run_of(res(INSTANCE, "i", INSTANCE_OK)), config) == []
    outside = changed(INSTANCE_OK, "fallback_regions", ["us-west-2", "europe-central-1"])
    assert messages(policy, run_of(res(INSTANCE, "i", outside)), config) == [
        "regions europe-central-1 are not approved."
    ]


def test_managed_ssh_key() -> None:
    policy = "lambda-cloud-instance-managed-ssh-key"
    key = res(SSH_KEY, "key", {"name": "sophia-prod-ai-core", "public_key": "ssh-ed25519 AAAA x"})
    assert messages(policy, run_of(key, res(INSTANCE, "i", INSTANCE_OK))) == []
    hand_made = changed(INSTANCE_OK, "ssh_key_names", ["laptop-key"])
    assert messages(policy, run_of(key, res(INSTANCE, "i", hand_made))) == [
        "i: SSH key laptop-key is not managed here."
    ]


TYPES = {"allowedInstanceTypes": {"ai-core": ["gpu_1x_gh200"], "dev": ["gpu_1x_a10"]}}


def test_instance_types_per_pool() -> None:
    policy = "lambda-cloud-instance-type-allowed"
    assert messages(policy, run_of(res(INSTANCE, "i", INSTANCE_OK)), TYPES) == []
    big = changed(INSTANCE_OK, "instance_type", "gpu_8x_h100_sxm5")
    assert messages(policy, run_of(res(INSTANCE, "i", big)), TYPES) == [
        "gpu_8x_h100_sxm5 is not approved for pool ai-core (gpu_1x_gh200)."
    ]
    stray = changed(INSTANCE_OK, "tags.pool", "batch")
    assert messages(policy, run_of(res(INSTANCE, "i", stray)), TYPES) == [
        "pool 'batch' has no approved instance types."
    ]


def test_pool_bounds() -> None:
    policy = "sophia-gpupool-size-bounds"
    instances = [res(INSTANCE, f"i{n}", INSTANCE_OK) for n in range(3)]
    config = {"poolBounds": {"ai-core": {"min": 2, "max": 3}}}
    assert messages(policy, run_of(*instances), config) == []
    assert messages(policy, run_of(*instances, res(INSTANCE, "i9", INSTANCE_OK)), config) == [
        "pool ai-core runs 4 instances; bounds are 2-3."
    ]
    assert messages(policy, run_of(instances[0]), config) == ["pool ai-core runs 1 instances; bounds are 2-3."]


def test_dev_pool_must_hibernate() -> None:
    policy = "lambda-cloud-instance-off-hours"
    dev = changed(INSTANCE_OK, "tags.pool", "dev")
    scheduled = changed(dev, "tags.off-hours", "stop 19:00 start 08:00 UTC weekends-off")
    assert messages(policy, run_of(res(INSTANCE, "i", scheduled))) == []
    assert messages(policy, run_of(res(INSTANCE, "i", INSTANCE_OK))) == []  # not a hibernating pool
    assert messages(policy, run_of(res(INSTANCE, "i", dev))) == [
        "pool dev hibernates but the instance has no off-hours tag."
    ]


def test_gpu_cost_tags() -> None:
    policy = "lambda-cloud-instance-cost-tags"
    assert messages(policy, run_of(res(INSTANCE, "i", INSTANCE_OK))) == []
    untagged = changed(INSTANCE_OK, "tags", {"owner": "x"})
    assert messages(policy, run_of(res(INSTANCE, "i", untagged))) == ["missing tags pool, cost-centre."]


def test_budget_counts_gpu_and_aws_from_the_price_tables() -> None:
    policy = "sophia-cost-stack-budget"
    # gh200 1.49/h and db.r6g.large 0.225/h multi-AZ (x2) with 100 GiB (x2): 1087.70 + 328.50 + 23.00
    resources = [
        res(INSTANCE, "i", INSTANCE_OK),
        aws_provider(DEFAULT_TAGS),
        aws_res(
            "aws:rds/instance:Instance",
            "db",
            {"instanceClass": "db.r6g.large", "multiAz": True, "allocatedStorage": 100.0},
        ),
    ]
    assert messages(policy, run_of(*resources), {"monthlyBudgetUsd": 1440}) == []
    found = messages(policy, run_of(*resources), {"monthlyBudgetUsd": 1439})
    assert found == ["estimated $1,439/month exceeds the budget of $1,439 (aws/rds $352, gpu-pool/ai-core $1,088)."]


def test_aws_classes_from_the_allow_list() -> None:
    policy = "aws-compute-instance-class-allowed"
    ok = aws_res("aws:rds/instance:Instance", "db", {"instanceClass": "db.r6g.large"})
    assert messages(policy, run_of(ok)) == []
    big = aws_res("aws:rds/instance:Instance", "db", {"instanceClass": "db.x2g.16xlarge"})
    assert messages(policy, run_of(big)) == ["db.x2g.16xlarge is not an allowed class."]
    nodes = aws_res("aws:eks/nodeGroup:NodeGroup", "ng", {"instanceTypes": ["m6i.large", "p5.48xlarge"]})
    assert messages(policy, run_of(nodes)) == ["p5.48xlarge is not an allowed class."]


@pytest.mark.parametrize(
    ("type_", "inputs"),
    [
        ("aws:s3/bucket:Bucket", {}),
        ("aws:rds/instance:Instance", {"instanceClass": "db.r6g.large"}),
        ("kubernetes:core/v1:PersistentVolumeClaim", {"metadata": {"name": "data"}}),
        ("pulumi-python:dynamic/lambda:Filesystem", {"name": "models", "region": "us-west-1"}),
    ],
)
def test_stateful_resources_protected_in_prod_and_dr(type_: str, inputs: dict[str, Any]) -> None:
    policy = "pulumi-stateful-resource-protected"
    assert messages(policy, run_of(res(type_, "s", inputs, protect=True))) == []
    assert messages(policy, run_of(res(type_, "s", inputs))) == ["holds data but is not protected."]
    assert messages(policy, run_of(res(type_, "s", inputs)), {"environment": "dr"}) == [
        "holds data but is not protected."
    ]
    assert messages(policy, run_of(res(type_, "s", inputs)), {"environment": "dev"}) == []


def test_stateless_resources_need_no_protect() -> None:
    assert messages("pulumi-stateful-resource-protected", run_of(res("aws:ec2/vpc:Vpc", "v", {}))) == []
