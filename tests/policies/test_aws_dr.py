"""The DR-learned AWS rules, written with pulumi-aws's classes: a compliant stack passes, each broken
property or missing dependency fails with its message, and a value a first preview cannot know leaves
that resource's verdict undetermined (reported, never passed). The shipped stacks comply, and breaking
what they do right is caught on their own resources."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pulumi
import pytest

from tests.policies.helpers import aws, messages, program, random, skipped
from tools.harness import StackRun, run_stack

ACCOUNT = "123456789012"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ROOT = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}
USE = {
    "Sid": "AutoScalingUses",
    "Effect": "Allow",
    "Principal": {"AWS": SLR},
    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
    "Resource": "*",
}
GRANT = {
    "Sid": "AutoScalingGrants",
    "Effect": "Allow",
    "Principal": {"AWS": SLR},
    "Action": "kms:CreateGrant",
    "Resource": "*",
    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
}
KEY_RULE = "aws-kms-key-admits-volume-launchers"
EBS_RULE = "aws-ebs-account-defaults-unchanged"
CONTEXT_RULE = "aws-iam-policy-s3-kms-context-matches-bucket-keys"
TRAIL_RULE = "aws-cloudtrail-trail-depends-on-bucket-policy"
FLOW_LOG_RULE = "aws-ec2-flowlog-depends-on-bucket-policy"
REPLICATION_RULE = "aws-s3-replication-depends-on-versioning"
RULES = (KEY_RULE, EBS_RULE, CONTEXT_RULE, TRAIL_RULE, FLOW_LOG_RULE, REPLICATION_RULE)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# -- the shipped stacks -----------------------------------------------------------------------


@cache
def shipped(stack: str, first_preview: bool = False) -> StackRun:
    return run_stack(stack, first_preview=first_preview)


@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
@pytest.mark.parametrize("stack", ["dr", "prod"])
@pytest.mark.parametrize("policy", RULES)
def test_the_shipped_stacks_comply(policy: str, stack: str, first_preview: bool) -> None:
    run = shipped(stack, first_preview)
    assert messages(policy, run) == []
    assert skipped(policy, run) == []


def broken(run: StackRun, name: str, change: Callable[[Any], dict[str, Any]]) -> StackRun:
    """`run` with the resource `name` changed (its inputs and state as one)."""
    resources = tuple(dataclasses.replace(r, **change(r), outputs=None) if r.name == name else r for r in run.resources)
    return dataclasses.replace(run, resources=resources)


def test_the_rules_judge_the_shipped_resources() -> None:
    """Not vacuous on the real shapes: undoing what the DR and prod stacks do right is caught."""
    dr, prod = shipped("dr"), shipped("prod")
    no_depends: Callable[[Any], dict[str, Any]] = lambda r: {"depends_on": ()}  # noqa: E731
    assert messages(TRAIL_RULE, broken(dr, "sophia-dr-dr-audit-trail", no_depends)) == [
        "sophia-dr-dr-audit-trail may be created before sophia-dr-dr-audit-audit-tls-only."
    ]
    assert messages(FLOW_LOG_RULE, broken(dr, "sophia-dr-dr-network-flow-log", no_depends)) == [
        "sophia-dr-dr-network-flow-log may be created before sophia-dr-dr-audit-audit-tls-only."
    ]
    assert messages(REPLICATION_RULE, broken(prod, "sophia-prod-backups-replication", no_depends)) == [
        "sophia-prod-backups-replication may be created before sophia-prod-backups-versioning.",
        "sophia-prod-backups-replication may be created before sophia-prod-backups-replica-versioning.",
    ]
    (found,) = messages(
        KEY_RULE, broken(dr, "sophia-dr-dr-data-key", lambda r: {"inputs": {**r.inputs, "policy": None}})
    )
    # Every node group's template names the key: the cluster's own and the service fleet's.
    assert found.startswith("sophia-dr-dr-data-key encrypts volumes sophia-dr-dr-eks-nodes, ")
    for pool in ("ai-core", "business", "data", "dev"):
        assert f"sophia-dr-dr-services-{pool}-nodes" in found

    def object_arns_only(resource: Any) -> dict[str, Any]:
        text = resource.inputs["policy"].replace('"arn:aws:s3:::sophia-prod-backups", ', "")
        return {"inputs": {**resource.inputs, "policy": text}}

    (found,) = messages(CONTEXT_RULE, broken(prod, "sophia-prod-backups-replication-policy", object_arns_only))
    assert "allows arn:aws:s3:::sophia-prod-backups/*, but sophia-prod-backups-bucket uses S3 Bucket Keys" in found


# -- a key that encrypts launched volumes ------------------------------------------------------


def launched(policy: str | None, *, key_policy: str | None = None, first_preview: bool = False) -> StackRun:
    """A customer key and a launch template whose volumes it encrypts (its policy on the key, or on a
    KeyPolicy resource)."""

    def build() -> None:
        key = aws.kms.Key("data-key", enable_key_rotation=True, **({"policy": policy} if policy else {}))
        if key_policy is not None:
            aws.kms.KeyPolicy("data-key-policy", key_id=key.id, policy=key_policy)
        aws.ec2.LaunchTemplate(
            "nodes",
            block_device_mappings=[
                {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "kms_key_id": key.arn, "volume_size": 50}}
            ],
        )

    return program(build, first_preview=first_preview)


@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
def test_a_key_admitting_the_auto_scaling_role_passes(first_preview: bool) -> None:
    run = launched(document(ROOT, USE, GRANT), first_preview=first_preview)
    assert messages(KEY_RULE, run) == []
    assert skipped(KEY_RULE, run) == []


@pytest.mark.parametrize(
    ("statements", "missing"),
    [
        ([ROOT], "kms:Decrypt"),  # the default key policy: the account only
        (None, "kms:Decrypt"),
        ([ROOT, USE], "kms:CreateGrant"),  # volumes attach through grants
        ([ROOT, GRANT], "kms:GenerateDataKeyWithoutPlaintext"),
        ([ROOT, {**USE, "Effect": "Deny"}, GRANT], "kms:Decrypt"),
    ],
)
def test_a_key_that_does_not_admit_the_auto_scaling_role_fails(
    statements: list[dict[str, Any]] | None, missing: str
) -> None:
    (message,) = messages(KEY_RULE, launched(document(*statements) if statements else None))
    assert message.startswith("data-key encrypts volumes nodes launches, but its key policy does not let the Auto")
    assert missing in message


def test_a_key_policy_resource_sets_the_policy() -> None:
    assert messages(KEY_RULE, launched(None, key_policy=document(ROOT, USE, GRANT))) == []
    assert len(messages(KEY_RULE, launched(document(ROOT, USE, GRANT), key_policy=document(ROOT)))) == 1


def test_a_key_policy_not_known_during_preview_is_undetermined() -> None:
    def build() -> None:
        role = aws.iam.ServiceLinkedRole("asg", aws_service_name="autoscaling.amazonaws.com")
        policy = role.arn.apply(lambda arn: document(ROOT, {**USE, "Principal": {"AWS": arn}}))
        key = aws.kms.Key("data-key", enable_key_rotation=True, policy=policy)
        aws.ec2.LaunchTemplate(
            "nodes", block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"kms_key_id": key.arn}}]
        )

    run = program(build, first_preview=True)
    assert messages(KEY_RULE, run) == []
    assert skipped(KEY_RULE, run) == ["data-key: policy can't be known during preview"]


def test_the_account_default_key_is_a_launcher_too() -> None:
    def build() -> None:
        key = aws.kms.Key("default-key", enable_key_rotation=True, policy=document(ROOT))
        aws.ebs.DefaultKmsKey("ebs-default-key", key_arn=key.arn)

    (message,) = messages(KEY_RULE, program(build))
    assert message.startswith("default-key encrypts volumes ebs-default-key launches")


# -- account-wide EBS defaults ----------------------------------------------------------------


@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
def test_account_wide_ebs_defaults_are_refused_unless_allowed(first_preview: bool) -> None:
    def build() -> None:
        key = aws.kms.Key("k", enable_key_rotation=True)
        aws.ebs.DefaultKmsKey("ebs-key", key_arn=key.arn)  # unknown in a first preview: not needed
        aws.ebs.EncryptionByDefault("ebs-default", enabled=True)

    run = program(build, first_preview=first_preview)
    assert messages(EBS_RULE, run) == [
        "it changes an account-wide EBS default (DefaultKmsKey).",
        "it changes an account-wide EBS default (EncryptionByDefault).",
    ]
    assert skipped(EBS_RULE, run) == []
    assert messages(EBS_RULE, run, {"allowAccountDefaults": True}) == []
    # An account-baseline stack that is allowed to still keeps encryption by default on.
    assert messages("aws-ebs-encryption-by-default-enabled", run) == []


def test_a_stack_without_account_defaults_passes() -> None:
    run = program(lambda: aws.ebs.Volume("v", availability_zone="us-east-1a", size=10, encrypted=True))
    assert messages(EBS_RULE, run) == []


# -- KMS conditions and S3 Bucket Keys ---------------------------------------------------------

BACKUPS_ARN = "arn:aws:s3:::sophia-backups"


def bucket_with_key(bucket_key: bool, *, name: Any = "sophia-backups") -> Any:
    bucket = aws.s3.Bucket("backups", bucket=name)
    aws.s3.BucketServerSideEncryptionConfiguration(
        "backups-encryption",
        bucket=bucket.id,
        rules=[
            {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": bucket_key}
        ],
    )
    return bucket


def reader(condition: dict[str, Any] | pulumi.Output[dict[str, Any]]) -> None:
    def policy(value: dict[str, Any]) -> str:
        return document({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": value})

    text = condition.apply(policy) if isinstance(condition, pulumi.Output) else policy(condition)
    aws.iam.RolePolicy("reader", role="replication", policy=text)


def context(operator: str, *values: str) -> dict[str, Any]:
    return {operator: {"kms:EncryptionContext:aws:s3:arn": list(values) if len(values) > 1 else values[0]}}


@pytest.mark.parametrize(
    "condition",
    [
        context("StringLike", BACKUPS_ARN, f"{BACKUPS_ARN}/*"),
        context("StringEquals", BACKUPS_ARN),
        context("StringLike", f"{BACKUPS_ARN}*"),
        context("ForAnyValue:StringLikeIfExists", f"{BACKUPS_ARN}*"),
        context("StringNotLike", f"{BACKUPS_ARN}/secret/*"),  # a negative condition is not a grant's scope
    ],
)
def test_conditions_that_match_the_bucket_arn_pass(condition: dict[str, Any]) -> None:
    def build() -> None:
        bucket_with_key(True)
        reader(condition)

    assert messages(CONTEXT_RULE, program(build)) == []


def test_object_arn_conditions_on_a_bucket_key_bucket_fail() -> None:
    def build(bucket_key: bool) -> Callable[[], None]:
        def run() -> None:
            bucket_with_key(bucket_key)
            reader(context("StringLike", f"{BACKUPS_ARN}/*"))

        return run

    assert messages(CONTEXT_RULE, program(build(True))) == [
        f"reader policy statement 0: kms:EncryptionContext:aws:s3:arn allows {BACKUPS_ARN}/*, but backups uses S3 "
        f"Bucket Keys, so KMS sees {BACKUPS_ARN}: the condition never matches."
    ]
    # Without Bucket Keys the object ARN is the context: the same condition is right.
    assert messages(CONTEXT_RULE, program(build(False))) == []


def test_key_policies_are_judged_too() -> None:
    def build() -> None:
        bucket_with_key(True)
        statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/replication"}}
        statement |= {
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": context("StringEquals", f"{BACKUPS_ARN}/x"),
        }
        aws.kms.Key("replica-key", enable_key_rotation=True, policy=document(ROOT, statement))

    (found,) = messages(CONTEXT_RULE, program(build))
    assert found.startswith("replica-key policy statement 1: kms:EncryptionContext:aws:s3:arn allows")


def test_a_condition_not_known_during_preview_is_undetermined() -> None:
    def build() -> None:
        bucket = bucket_with_key(True)
        reader(bucket.arn.apply(lambda arn: context("StringLike", f"{arn}/*")))

    run = program(build, first_preview=True)
    assert messages(CONTEXT_RULE, run) == []
    assert skipped(CONTEXT_RULE, run) == ["reader: policy: the document can't be known during preview"]

    # Without a bucket that uses Bucket Keys there is nothing to match: an unknown document passes.
    def without_bucket_keys() -> None:
        bucket = bucket_with_key(False)
        reader(bucket.arn.apply(lambda arn: context("StringLike", f"{arn}/*")))

    assert skipped(CONTEXT_RULE, program(without_bucket_keys, first_preview=True)) == []


def test_a_bucket_name_not_known_during_preview_is_undetermined() -> None:
    def build() -> None:
        bucket_with_key(True, name=random.RandomPet("name").id)
        reader(context("StringLike", f"{BACKUPS_ARN}/*"))

    run = program(build, first_preview=True)
    assert messages(CONTEXT_RULE, run) == []
    assert skipped(CONTEXT_RULE, run) == [
        "reader: the name of backups, which uses S3 Bucket Keys, can't be known during preview"
    ]


# -- orderings ---------------------------------------------------------------------------------

AUDIT = "sophia-audit"


def audit(*, depends: bool, literal: bool = False, random_name: bool = False, first_preview: bool = False) -> StackRun:
    """An audit bucket and its policy, a trail and a flow log writing to it (by output or by name); the
    bucket's name is `sophia-audit`, or a random one (unknown in a first preview)."""

    def build() -> None:
        bucket = aws.s3.Bucket("audit", bucket=random.RandomPet("name").id if random_name else AUDIT)
        policy = aws.s3.BucketPolicy("audit-policy", bucket=bucket.id, policy=document(ROOT))
        opts = pulumi.ResourceOptions(depends_on=[policy] if depends else [])
        aws.cloudtrail.Trail("trail", s3_bucket_name=AUDIT if literal else bucket.id, opts=opts)
        destination = f"arn:aws:s3:::{AUDIT}/flow-logs/" if literal else bucket.arn.apply(lambda a: f"{a}/flow-logs/")
        aws.ec2.FlowLog("flow-log", vpc_id="vpc-1", log_destination_type="s3", log_destination=destination, opts=opts)

    return program(build, first_preview=first_preview)


@pytest.mark.parametrize("literal", [False, True], ids=["by-output", "by-name"])
@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
@pytest.mark.parametrize(("policy", "subject"), [(TRAIL_RULE, "trail"), (FLOW_LOG_RULE, "flow-log")])
def test_log_delivery_waits_for_the_bucket_policy(
    policy: str, subject: str, first_preview: bool, literal: bool
) -> None:
    waiting = audit(depends=True, literal=literal, first_preview=first_preview)
    assert messages(policy, waiting) == []
    assert skipped(policy, waiting) == []
    racing = audit(depends=False, literal=literal, first_preview=first_preview)
    assert messages(policy, racing) == [f"{subject} may be created before audit-policy."]


def test_a_component_that_waits_holds_back_its_children() -> None:
    class Audit(pulumi.ComponentResource):
        def __init__(self, bucket: Any, opts: pulumi.ResourceOptions) -> None:
            super().__init__("test:index:Audit", "audit-trail", None, opts)
            aws.cloudtrail.Trail("trail", s3_bucket_name=bucket.id, opts=pulumi.ResourceOptions(parent=self))

    def build() -> None:
        bucket = aws.s3.Bucket("audit", bucket=AUDIT)
        policy = aws.s3.BucketPolicy("audit-policy", bucket=bucket.id, policy=document(ROOT))
        Audit(bucket, pulumi.ResourceOptions(depends_on=[policy]))

    assert messages(TRAIL_RULE, program(build)) == []


def test_a_flow_log_to_cloudwatch_is_not_judged() -> None:
    def build() -> None:
        bucket = aws.s3.Bucket("audit", bucket=AUDIT)
        aws.s3.BucketPolicy("audit-policy", bucket=bucket.id, policy=document(ROOT))
        aws.ec2.FlowLog(
            "flow-log", vpc_id="vpc-1", log_destination_type="cloud-watch-logs", log_destination="arn:aws:logs:x"
        )

    assert messages(FLOW_LOG_RULE, program(build)) == []


@pytest.mark.parametrize(("policy", "subject"), [(TRAIL_RULE, "trail"), (FLOW_LOG_RULE, "flow-log")])
def test_a_bucket_named_literally_whose_name_is_unknown_is_undetermined(policy: str, subject: str) -> None:
    run = audit(depends=False, literal=True, random_name=True, first_preview=True)
    assert messages(policy, run) == []
    assert skipped(policy, run) == [
        f"{subject}: the name of audit, which may be {AUDIT}, can't be known during preview"
    ]


def replication(*, depends: bool, literal_destination: bool = False, first_preview: bool = False) -> StackRun:
    def build() -> None:
        source = aws.s3.Bucket("source", bucket="a")
        replica = aws.s3.Bucket("replica", bucket="b")
        versionings = [
            aws.s3.BucketVersioning(f"{name}-versioning", bucket=b.id, versioning_configuration={"status": "Enabled"})
            for name, b in (("source", source), ("replica", replica))
        ]
        destination = "arn:aws:s3:::b" if literal_destination else replica.arn
        aws.s3.BucketReplicationConfig(
            "replication",
            bucket=source.id,
            role="arn:aws:iam::123456789012:role/replication",
            rules=[{"id": "dr", "status": "Enabled", "destination": {"bucket": destination}}],
            opts=pulumi.ResourceOptions(depends_on=versionings if depends else []),
        )

    return program(build, first_preview=first_preview)


@pytest.mark.parametrize("literal_destination", [False, True], ids=["by-output", "by-name"])
@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
def test_replication_waits_for_versioning_on_both_buckets(first_preview: bool, literal_destination: bool) -> None:
    waiting = replication(depends=True, literal_destination=literal_destination, first_preview=first_preview)
    assert messages(REPLICATION_RULE, waiting) == []
    assert skipped(REPLICATION_RULE, waiting) == []
    racing = replication(depends=False, literal_destination=literal_destination, first_preview=first_preview)
    assert messages(REPLICATION_RULE, racing) == [
        "replication may be created before source-versioning.",
        "replication may be created before replica-versioning.",
    ]


def test_a_destination_in_another_stack_has_no_versioning_here() -> None:
    def build() -> None:
        source = aws.s3.Bucket("source", bucket="a")
        versioning = aws.s3.BucketVersioning(
            "source-versioning", bucket=source.id, versioning_configuration={"status": "Enabled"}
        )
        aws.s3.BucketReplicationConfig(
            "replication",
            bucket=source.id,
            role="arn:aws:iam::123456789012:role/replication",
            rules=[{"id": "dr", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::elsewhere"}}],
            opts=pulumi.ResourceOptions(depends_on=[versioning]),
        )

    assert messages(REPLICATION_RULE, program(build)) == []
    assert skipped(REPLICATION_RULE, program(build)) == []
