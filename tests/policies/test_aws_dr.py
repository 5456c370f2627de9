"""The DR-learned AWS rules: each starts from a compliant stack (the shipped ones, or a small
hand-built one) and breaks one property."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.helpers import aws_res, messages, run_of
from tools.harness import RegisteredResource, run_stack

KEY = "aws:kms/key:Key"
ACCOUNT = "123456789012"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ROOT = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}
USE = {
    "Effect": "Allow",
    "Principal": {"AWS": SLR},
    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
    "Resource": "*",
}
GRANT = {
    "Effect": "Allow",
    "Principal": {"AWS": SLR},
    "Action": "kms:CreateGrant",
    "Resource": "*",
    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
}


@pytest.mark.parametrize(
    "policy",
    [
        "aws-kms-key-admits-volume-launchers",
        "aws-iam-policy-s3-kms-context-matches-bucket-keys",
        "aws-cloudtrail-trail-depends-on-bucket-policy",
        "aws-ec2-flowlog-depends-on-bucket-policy",
        "aws-s3-replication-depends-on-versioning",
        "aws-ebs-account-defaults-unchanged",
    ],
)
@pytest.mark.parametrize("stack", ["dr", "prod"])
def test_the_shipped_stacks_comply(policy: str, stack: str) -> None:
    assert messages(policy, run_stack(stack)) == []


# -- a key that encrypts launched volumes ------------------------------------------------------


def launch(statements: list[dict[str, Any]] | None) -> list[RegisteredResource]:
    key = aws_res(KEY, "data-key", {"policy": json.dumps({"Statement": statements})} if statements else {})
    template = aws_res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "nodes",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
        property_dependencies={"blockDeviceMappings": (key.urn,)},
    )
    return [key, template]


def test_a_key_admitting_the_auto_scaling_role_passes() -> None:
    assert messages("aws-kms-key-admits-volume-launchers", run_of(*launch([ROOT, USE, GRANT]))) == []


@pytest.mark.parametrize(
    ("statements", "missing"),
    [
        ([ROOT], "kms:Decrypt"),  # the default key policy: account root only
        (None, "kms:Decrypt"),
        ([ROOT, USE], "kms:CreateGrant"),  # volumes attach through grants
        ([ROOT, GRANT], "kms:GenerateDataKeyWithoutPlaintext"),
    ],
)
def test_a_key_that_does_not_admit_the_auto_scaling_role_fails(
    statements: list[dict[str, Any]] | None, missing: str
) -> None:
    (message,) = messages("aws-kms-key-admits-volume-launchers", run_of(*launch(statements)))
    assert "data-key encrypts volumes nodes launches" in message
    assert missing in message


def test_account_wide_ebs_defaults_are_refused_unless_allowed() -> None:
    default_key = aws_res("aws:ebs/defaultKmsKey:DefaultKmsKey", "ebs-key", {"keyArn": "arn:aws:kms:..."})
    by_default = aws_res("aws:ebs/encryptionByDefault:EncryptionByDefault", "ebs-default", {"enabled": True})
    run = run_of(default_key, by_default)
    assert len(messages("aws-ebs-account-defaults-unchanged", run)) == 2
    assert messages("aws-ebs-account-defaults-unchanged", run, {"allowAccountDefaults": True}) == []


# -- KMS conditions and S3 Bucket Keys ---------------------------------------------------------


def bucket_with_key(bucket_key: bool) -> list[RegisteredResource]:
    bucket = aws_res("aws:s3/bucket:Bucket", "backups", {"bucket": "sophia-backups"})
    encryption = aws_res(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "backups-encryption",
        {
            "rules": [
                {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": bucket_key}
            ]
        },
        property_dependencies={"bucket": (bucket.urn,)},
    )
    return [bucket, encryption]


def role_policy(condition: dict[str, Any]) -> RegisteredResource:
    statement = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": condition}
    return aws_res("aws:iam/rolePolicy:RolePolicy", "reader", {"policy": json.dumps({"Statement": [statement]})})


@pytest.mark.parametrize(
    "condition",
    [
        {
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::sophia-backups", "arn:aws:s3:::sophia-backups/*"]
            }
        },
        {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::sophia-backups"}},
        {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::sophia-backups*"}},
    ],
)
def test_conditions_that_match_the_bucket_arn_pass(condition: dict[str, Any]) -> None:
    run = run_of(*bucket_with_key(True), role_policy(condition))
    assert messages("aws-iam-policy-s3-kms-context-matches-bucket-keys", run) == []


def test_object_arn_conditions_on_a_bucket_key_bucket_fail() -> None:
    condition = {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::sophia-backups/*"}}
    (message,) = messages(
        "aws-iam-policy-s3-kms-context-matches-bucket-keys", run_of(*bucket_with_key(True), role_policy(condition))
    )
    assert "KMS sees arn:aws:s3:::sophia-backups" in message
    # Without Bucket Keys the object ARN is the context: the same condition is right.
    assert (
        messages(
            "aws-iam-policy-s3-kms-context-matches-bucket-keys", run_of(*bucket_with_key(False), role_policy(condition))
        )
        == []
    )


# -- orderings ---------------------------------------------------------------------------------


def trail_stack(depends: bool) -> list[RegisteredResource]:
    bucket = aws_res("aws:s3/bucket:Bucket", "audit", {"bucket": "sophia-audit"})
    policy = aws_res(
        "aws:s3/bucketPolicy:BucketPolicy",
        "audit-policy",
        {"policy": "{}"},
        property_dependencies={"bucket": (bucket.urn,)},
    )
    trail = aws_res(
        "aws:cloudtrail/trail:Trail", "trail", {"name": "trail"}, property_dependencies={"s3BucketName": (bucket.urn,)}
    )
    if depends:
        trail = RegisteredResource(**{**trail.__dict__, "depends_on": (policy.urn,)})
    flow_log = aws_res(
        "aws:ec2/flowLog:FlowLog",
        "flow-log",
        {"logDestinationType": "s3", "logDestination": "arn:aws:s3:::sophia-audit/flow-logs/"},
    )
    if depends:
        flow_log = RegisteredResource(**{**flow_log.__dict__, "depends_on": (policy.urn,)})
    return [bucket, policy, trail, flow_log]


@pytest.mark.parametrize(
    ("policy", "subject"),
    [
        ("aws-cloudtrail-trail-depends-on-bucket-policy", "trail"),
        ("aws-ec2-flowlog-depends-on-bucket-policy", "flow-log"),
    ],
)
def test_log_delivery_waits_for_the_bucket_policy(policy: str, subject: str) -> None:
    assert messages(policy, run_of(*trail_stack(True))) == []
    (message,) = messages(policy, run_of(*trail_stack(False)))
    assert message == f"{subject} may be created before audit-policy."


def test_replication_waits_for_versioning_on_both_buckets() -> None:
    source = aws_res("aws:s3/bucket:Bucket", "source", {"bucket": "a"})
    replica = aws_res("aws:s3/bucket:Bucket", "replica", {"bucket": "b"})
    versionings = [
        aws_res(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{b.name}-versioning",
            {},
            property_dependencies={"bucket": (b.urn,)},
        )
        for b in (source, replica)
    ]
    replication = aws_res(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "replication",
        {"rules": []},
        property_dependencies={"bucket": (source.urn,), "rules": (replica.urn,)},
    )
    found = messages("aws-s3-replication-depends-on-versioning", run_of(source, replica, *versionings, replication))
    assert found == [
        "replication may be created before source-versioning.",
        "replication may be created before replica-versioning.",
    ]
    waiting = RegisteredResource(**{**replication.__dict__, "depends_on": tuple(v.urn for v in versionings)})
    assert messages("aws-s3-replication-depends-on-versioning", run_of(source, replica, *versionings, waiting)) == []
