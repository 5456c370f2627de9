"""AWS rules: a compliant baseline passes; each broken property fails with its message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.policies.helpers import (
    DEFAULT_TAGS,
    DELETE,
    POLICIES,
    aws_provider,
    aws_res,
    changed,
    messages,
    run_of,
    urn,
)
from tools.policy_eval import evaluate

RDS = "aws:rds/instance:Instance"
RDS_PRIMARY: dict[str, Any] = {
    "engine": "postgres",
    "instanceClass": "db.r6g.large",
    "allocatedStorage": 100.0,
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 7.0,
    "deletionProtection": True,
    "multiAz": True,
}
RDS_REPLICA = {**RDS_PRIMARY, "replicateSourceDb": "arn:aws:rds:us-west-2:1:db:primary", "backupRetentionPeriod": 0.0}
del RDS_REPLICA["storageEncrypted"]


def rds(inputs: dict[str, Any]) -> Any:
    return run_of(aws_provider(DEFAULT_TAGS), aws_res(RDS, "db", inputs))


@pytest.mark.parametrize(
    ("policy", "path", "value", "expected"),
    [
        ("aws-rds-instance-encrypted", "storageEncrypted", False, "storageEncrypted is not true."),
        ("aws-rds-instance-encrypted", "storageEncrypted", DELETE, "storageEncrypted is not true."),
        ("aws-rds-instance-not-public", "publiclyAccessible", True, "publiclyAccessible is true."),
        ("aws-rds-instance-backup-retention", "backupRetentionPeriod", 3.0, "backupRetentionPeriod is 3 days"),
        ("aws-rds-instance-deletion-protection", "deletionProtection", False, "deletionProtection is not true."),
        ("aws-rds-instance-multi-az", "multiAz", False, "multiAz is not true."),
    ],
)
def test_rds(policy: str, path: str, value: Any, expected: str) -> None:
    assert messages(policy, rds(RDS_PRIMARY)) == []
    found = messages(policy, rds(changed(RDS_PRIMARY, path, value)))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_read_replicas_inherit_encryption_and_skip_backup_retention() -> None:
    assert messages("aws-rds-instance-encrypted", rds(RDS_REPLICA)) == []
    assert messages("aws-rds-instance-backup-retention", rds(RDS_REPLICA)) == []


@pytest.mark.parametrize("policy", ["aws-rds-instance-deletion-protection", "aws-rds-instance-multi-az"])
def test_dev_may_skip_ha_and_deletion_protection(policy: str) -> None:
    loose = {**RDS_PRIMARY, "deletionProtection": False, "multiAz": False}
    assert messages(policy, rds(loose), {"environment": "dev"}) == []
    assert len(messages(policy, rds(loose), {"environment": "dr"})) == 1


def test_backup_days_come_from_config() -> None:
    assert messages("aws-rds-instance-backup-retention", rds(RDS_PRIMARY), {"minimumDays": 14}) == [
        "backupRetentionPeriod is 7 days; at least 14 required."
    ]


CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_OK: dict[str, Any] = {
    "nodeType": "cache.r6g.large",
    "atRestEncryptionEnabled": True,
    "transitEncryptionEnabled": True,
    "authToken": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"},
    "snapshotRetentionLimit": 7.0,
}


@pytest.mark.parametrize(
    ("policy", "path", "value", "expected"),
    [
        ("aws-elasticache-replicationgroup-encrypted", "atRestEncryptionEnabled", False, "atRestEncryptionEnabled"),
        ("aws-elasticache-replicationgroup-encrypted", "transitEncryptionEnabled", DELETE, "transitEncryptionEnabled"),
        ("aws-elasticache-replicationgroup-auth-token", "authToken", DELETE, "authToken is not set."),
        ("aws-elasticache-replicationgroup-snapshots", "snapshotRetentionLimit", 0.0, "snapshotRetentionLimit is 0"),
    ],
)
def test_elasticache(policy: str, path: str, value: Any, expected: str) -> None:
    ok = run_of(aws_provider(DEFAULT_TAGS), aws_res(CACHE, "cache", CACHE_OK))
    assert messages(policy, ok) == []
    broken = run_of(aws_provider(DEFAULT_TAGS), aws_res(CACHE, "cache", changed(CACHE_OK, path, value)))
    found = messages(policy, broken)
    assert len(found) == 1
    assert expected in found[0]


def test_elasticache_token_generated_at_deploy_counts_as_set() -> None:
    """In preview a pulumi-random token is unknown: the policy runs and passes rather than being skipped."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    pending = changed(CACHE_OK, "authToken", {**CACHE_OK["authToken"], "value": unknown})
    run = run_of(aws_provider(DEFAULT_TAGS), aws_res(CACHE, "cache", pending))
    policy = "aws-elasticache-replicationgroup-auth-token"
    evaluation = evaluate(run, {}, policies=[POLICIES[policy]])
    assert evaluation.violations == ()
    assert evaluation.skipped == ()
    empty = run_of(aws_provider(DEFAULT_TAGS), aws_res(CACHE, "cache", changed(CACHE_OK, "authToken", "")))
    assert messages(policy, empty) == ["authToken is not set."]


BUCKET = "aws:s3/bucket:Bucket"
BUCKET_URN = urn(BUCKET, "backups")
PAB_OK = {
    "bucket": "backups-id",
    "blockPublicAcls": True,
    "blockPublicPolicy": True,
    "ignorePublicAcls": True,
    "restrictPublicBuckets": True,
}
SSE_OK = {"bucket": "backups-id", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}
VERSIONING_OK = {"bucket": "backups-id", "versioningConfiguration": {"status": "Enabled"}}
REPLICATION_OK = {"bucket": "backups-id", "role": "arn:aws:iam::1:role/r", "rules": [{"id": "dr", "status": "Enabled"}]}
S3_PARTS = {
    "pab": ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", PAB_OK),
    "sse": ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", SSE_OK),
    "versioning": ("aws:s3/bucketVersioning:BucketVersioning", VERSIONING_OK),
    "replication": ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", REPLICATION_OK),
}


def s3_stack(**overrides: Any) -> Any:
    resources = [aws_provider(DEFAULT_TAGS), aws_res(BUCKET, "backups", {"tags": {"purpose": "backup"}})]
    for part, (type_, inputs) in S3_PARTS.items():
        value = overrides.get(part, inputs)
        if value is not None:
            resources.append(aws_res(type_, f"backups-{part}", value, property_dependencies={"bucket": (BUCKET_URN,)}))
    return run_of(*resources)


@pytest.mark.parametrize(
    ("policy", "override", "expected"),
    [
        ("aws-s3-bucket-public-access-blocked", {"pab": None}, "backups: no BucketPublicAccessBlock."),
        (
            "aws-s3-bucket-public-access-blocked",
            {"pab": {**PAB_OK, "restrictPublicBuckets": False}},
            "backups: public access block leaves restrictPublicBuckets off.",
        ),
        ("aws-s3-bucket-encrypted", {"sse": None}, "backups: no default server-side encryption."),
        (
            "aws-s3-bucket-versioned",
            {"versioning": {**VERSIONING_OK, "versioningConfiguration": {"status": "Suspended"}}},
            "backups: versioning is not enabled.",
        ),
        (
            "aws-s3-bucket-backup-replicated",
            {"replication": None},
            "backups: backup bucket has no enabled replication rule.",
        ),
    ],
)
def test_s3(policy: str, override: dict[str, Any], expected: str) -> None:
    assert messages(policy, s3_stack()) == []
    found = messages(policy, s3_stack(**override))
    assert found == [expected]


def test_replication_only_required_of_backup_buckets() -> None:
    plain = run_of(aws_provider(DEFAULT_TAGS), aws_res(BUCKET, "logs", {"tags": {"purpose": "logs"}}))
    assert messages("aws-s3-bucket-backup-replicated", plain) == []


SG = "aws:ec2/securityGroup:SecurityGroup"
SG_OK = {
    "ingress": [
        {"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "tcp", "fromPort": 5432.0, "toPort": 5432.0, "cidrBlocks": ["10.40.0.0/16"]},
    ]
}


@pytest.mark.parametrize(
    ("type_", "inputs", "expected"),
    [
        (
            SG,
            {"ingress": [{"protocol": "tcp", "fromPort": 5432.0, "toPort": 5432.0, "cidrBlocks": ["0.0.0.0/0"]}]},
            "ingress from 0.0.0.0/0 to port 5432.",
        ),
        (
            SG,
            {"ingress": [{"protocol": "tcp", "fromPort": 6000.0, "toPort": 7000.0, "ipv6CidrBlocks": ["::/0"]}]},
            "ingress from ::/0 to ports 6333-6335, 6379.",
        ),
        (
            SG,
            {"ingress": [{"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]}]},
            "ingress from 0.0.0.0/0 to all ports.",
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]},
            "ingress from 0.0.0.0/0 to port 22.",
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"ipProtocol": "tcp", "fromPort": 16379.0, "toPort": 16379.0, "cidrIpv4": "0.0.0.0/0"},
            "ingress from 0.0.0.0/0 to port 16379.",
        ),
    ],
)
def test_security_groups(type_: str, inputs: dict[str, Any], expected: str) -> None:
    policy = "aws-ec2-securitygroup-no-public-data-ports"
    assert messages(policy, run_of(aws_res(SG, "sg", SG_OK))) == []
    assert messages(policy, run_of(aws_res(type_, "sg", inputs))) == [expected]


def test_egress_rules_are_not_ingress() -> None:
    rule = {"type": "egress", "protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]}
    assert (
        messages(
            "aws-ec2-securitygroup-no-public-data-ports",
            run_of(aws_res("aws:ec2/securityGroupRule:SecurityGroupRule", "out", rule)),
        )
        == []
    )


def test_kms_rotation() -> None:
    policy = "aws-kms-key-rotation"
    assert messages(policy, run_of(aws_res("aws:kms/key:Key", "k", {"enableKeyRotation": True}))) == []
    assert messages(policy, run_of(aws_res("aws:kms/key:Key", "k", {}))) == ["enableKeyRotation is not true."]
    asymmetric = {"customerMasterKeySpec": "RSA_2048"}
    assert messages(policy, run_of(aws_res("aws:kms/key:Key", "k", asymmetric))) == []


@pytest.mark.parametrize(
    ("type_", "ok", "broken", "expected"),
    [
        ("aws:ebs/volume:Volume", {"size": 100.0, "encrypted": True}, {"size": 100.0}, "volume is not encrypted."),
        (
            "aws:ec2/instance:Instance",
            {"rootBlockDevice": {"encrypted": True}},
            {"rootBlockDevice": {"encrypted": True}, "ebsBlockDevices": [{"deviceName": "/dev/sdf"}]},
            "ebs block device /dev/sdf is not encrypted.",
        ),
        (
            "aws:ec2/launchTemplate:LaunchTemplate",
            {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
            {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]},
            "block device /dev/xvda is not encrypted.",
        ),
    ],
)
def test_ebs(type_: str, ok: dict[str, Any], broken: dict[str, Any], expected: str) -> None:
    assert messages("aws-ebs-volume-encrypted", run_of(aws_res(type_, "d", ok))) == []
    assert messages("aws-ebs-volume-encrypted", run_of(aws_res(type_, "d", broken))) == [expected]


def policy_doc(action: Any, resource: Any) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    )


@pytest.mark.parametrize("type_", ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"])
def test_iam_no_admin(type_: str) -> None:
    policy = "aws-iam-policy-no-admin"
    ok = policy_doc(["s3:GetObject"], "arn:aws:s3:::backups/*")
    assert messages(policy, run_of(aws_res(type_, "p", {"policy": ok}))) == []
    assert messages(policy, run_of(aws_res(type_, "p", {"policy": policy_doc("*", "*")}))) == [
        "a statement allows Action '*' on Resource '*'."
    ]
    assert len(messages(policy, run_of(aws_res(type_, "p", {"policy": policy_doc(["*"], ["*"])})))) == 1
    deny = json.dumps({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}})
    assert messages(policy, run_of(aws_res(type_, "p", {"policy": deny}))) == []


def test_required_tags_count_provider_default_tags() -> None:
    policy = "aws-resource-required-tags"
    bucket = aws_res(BUCKET, "b", {})
    assert messages(policy, run_of(aws_provider(DEFAULT_TAGS), bucket)) == []
    assert messages(policy, run_of(aws_provider({"owner": "x"}), bucket)) == ["missing tags cost-centre, environment."]
    tagged = aws_res(BUCKET, "b", {"tags": {"cost-centre": "c", "environment": "prod"}})
    assert messages(policy, run_of(aws_provider({"owner": "x"}), tagged)) == []
    assert messages(policy, run_of(aws_provider(None), bucket)) == ["missing tags owner, cost-centre, environment."]
