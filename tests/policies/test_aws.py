"""AWS data and storage rules, on resources written with pulumi-aws's own classes: a compliant baseline
passes; each broken property fails with its message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from tests.policies.helpers import DELETE, aws, messages, program, random, skipped, with_

RDS: dict[str, Any] = {
    "engine": "postgres",
    "instance_class": "db.r6g.large",
    "allocated_storage": 100,
    "storage_encrypted": True,
    "publicly_accessible": False,
    "backup_retention_period": 7,
    "deletion_protection": True,
    "multi_az": True,
}


def rds(**changes: Any) -> Any:
    return program(lambda: aws.rds.Instance("db", **with_(RDS, **changes)))


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-rds-instance-encrypted", {"storage_encrypted": False}, "storageEncrypted is not true."),
        ("aws-rds-instance-encrypted", {"storage_encrypted": DELETE}, "storageEncrypted is not true."),
        ("aws-rds-instance-not-public", {"publicly_accessible": True}, "publiclyAccessible is true."),
        ("aws-rds-instance-backup-retention", {"backup_retention_period": 3}, "backupRetentionPeriod is 3 days"),
        ("aws-rds-instance-deletion-protection", {"deletion_protection": False}, "deletionProtection is not true."),
        ("aws-rds-instance-multi-az", {"multi_az": False}, "multiAz is not true."),
        (
            "aws-rds-instance-performance-insights-encrypted",
            {"performance_insights_enabled": True},
            "Performance Insights is enabled without performanceInsightsKmsKeyId.",
        ),
    ],
)
def test_rds_instance(policy: str, change: dict[str, Any], expected: str) -> None:
    assert messages(policy, rds()) == []
    found = messages(policy, rds(**change))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_read_replicas_inherit_encryption_and_skip_backup_retention() -> None:
    replica = {"replicate_source_db": "arn:aws:rds:us-west-2:1:db:primary", "backup_retention_period": 0}
    assert messages("aws-rds-instance-encrypted", rds(storage_encrypted=DELETE, **replica)) == []
    assert messages("aws-rds-instance-backup-retention", rds(**replica)) == []


@pytest.mark.parametrize("policy", ["aws-rds-instance-deletion-protection", "aws-rds-instance-multi-az"])
def test_the_environment_comes_from_the_pack_config(policy: str) -> None:
    loose = rds(deletion_protection=False, multi_az=False)
    assert messages(policy, loose, environment="dev") == []
    assert len(messages(policy, loose, environment="dr")) == 1
    assert len(messages(policy, loose)) == 1  # no pack config: the strictest environment


def test_backup_days_come_from_config() -> None:
    assert messages("aws-rds-instance-backup-retention", rds(), {"minimumDays": 14}) == [
        "backupRetentionPeriod is 7 days; at least 14 required."
    ]


def test_performance_insights_with_a_key_passes_even_while_the_key_is_unknown() -> None:
    def build() -> None:
        key = aws.kms.Key("k", enable_key_rotation=True)
        aws.rds.Instance("db", **RDS, performance_insights_enabled=True, performance_insights_kms_key_id=key.arn)

    policy = "aws-rds-instance-performance-insights-encrypted"
    assert messages(policy, program(build, first_preview=True)) == []
    assert skipped(policy, program(build, first_preview=True)) == []


AURORA: dict[str, Any] = {
    "engine": "aurora-postgresql",
    "storage_encrypted": True,
    "backup_retention_period": 7,
    "deletion_protection": True,
}


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-rds-instance-encrypted", {"storage_encrypted": False}, "storageEncrypted is not true."),
        ("aws-rds-instance-backup-retention", {"backup_retention_period": DELETE}, "backupRetentionPeriod is 0"),
        ("aws-rds-instance-deletion-protection", {"deletion_protection": False}, "deletionProtection is not true."),
        ("aws-rds-instance-multi-az", {"availability_zones": ["us-east-1a"]}, "availabilityZones names 1 zone"),
    ],
)
def test_aurora_cluster(policy: str, change: dict[str, Any], expected: str) -> None:
    def cluster(**kw: Any) -> Any:
        return program(lambda: aws.rds.Cluster("aurora", **with_(AURORA, **kw)))

    assert messages(policy, cluster()) == []
    assert messages(policy, cluster(availability_zones=["us-east-1a", "us-east-1b"])) == []
    assert [m[: len(expected)] for m in messages(policy, cluster(**change))] == [expected]


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-rds-instance-not-public", {"publicly_accessible": True}, "publiclyAccessible is true."),
        (
            "aws-rds-instance-performance-insights-encrypted",
            {"performance_insights_enabled": True},
            "Performance Insights is enabled",
        ),
    ],
)
def test_aurora_cluster_instances(policy: str, change: dict[str, Any], expected: str) -> None:
    base = {"cluster_identifier": "aurora", "instance_class": "db.r6g.large", "engine": "aurora-postgresql"}

    def instance(**kw: Any) -> Any:
        return program(lambda: aws.rds.ClusterInstance("aurora-1", **with_(base, **kw)))

    assert messages(policy, instance()) == []
    assert [m[: len(expected)] for m in messages(policy, instance(**change))] == [expected]


CACHE: dict[str, Any] = {
    "description": "cache",
    "node_type": "cache.r6g.large",
    "at_rest_encryption_enabled": True,
    "transit_encryption_enabled": True,
    "auth_token": "s3cret-token-of-16+",
    "snapshot_retention_limit": 7,
}


def cache(**changes: Any) -> Any:
    return program(lambda: aws.elasticache.ReplicationGroup("cache", **with_(CACHE, **changes)))


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        (
            "aws-elasticache-replicationgroup-encrypted",
            {"at_rest_encryption_enabled": False},
            "atRestEncryptionEnabled",
        ),
        ("aws-elasticache-replicationgroup-encrypted", {"transit_encryption_enabled": DELETE}, "transitEncryption"),
        ("aws-elasticache-replicationgroup-auth-token", {"auth_token": DELETE}, "authToken is not set"),
        ("aws-elasticache-replicationgroup-auth-token", {"auth_token": ""}, "authToken is not set"),
        ("aws-elasticache-replicationgroup-snapshots", {"snapshot_retention_limit": 0}, "snapshotRetentionLimit is 0"),
    ],
)
def test_elasticache(policy: str, change: dict[str, Any], expected: str) -> None:
    assert messages(policy, cache()) == []
    found = messages(policy, cache(**change))
    assert len(found) == 1
    assert expected in found[0]


def test_elasticache_rbac_user_groups_authenticate_too() -> None:
    assert (
        messages("aws-elasticache-replicationgroup-auth-token", cache(auth_token=DELETE, user_group_ids=["ug"])) == []
    )


def test_elasticache_token_generated_at_deploy_counts_as_set() -> None:
    """In a first preview a pulumi-random token is unknown: the policy judges it set, not skipped."""

    def build() -> None:
        token = random.RandomPassword("token", length=32, special=False)
        aws.elasticache.ReplicationGroup("cache", **with_(CACHE, auth_token=token.result))

    run = program(build, first_preview=True)
    policy = "aws-elasticache-replicationgroup-auth-token"
    assert messages(policy, run) == []
    assert skipped(policy, run) == []


# -- S3 ---------------------------------------------------------------------------------------

TLS_ONLY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::backups", "arn:aws:s3:::backups/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}
PAB = {
    "block_public_acls": True,
    "block_public_policy": True,
    "ignore_public_acls": True,
    "restrict_public_buckets": True,
}
S3_POLICIES = (
    "aws-s3-bucket-public-access-blocked",
    "aws-s3-publicaccessblock-all-flags-on",
    "aws-s3-bucket-encrypted",
    "aws-s3-bucket-versioned",
    "aws-s3-bucket-backup-replicated",
    "aws-s3-bucket-tls-only",
    "aws-s3-bucket-acls-disabled",
    "aws-s3-bucket-no-public-acl",
)


def s3(*, literal_names: bool = False, first_preview: bool = False, **parts: Any) -> Any:
    """A backup bucket and its settings resources; `parts` replaces one (None drops it)."""

    def build() -> None:
        bucket = aws.s3.Bucket("backups", bucket="backups", tags={"purpose": "backup"})
        target: Any = "backups" if literal_names else bucket.id
        settings: dict[str, Callable[[], object]] = {
            "pab": lambda: aws.s3.BucketPublicAccessBlock("backups-pab", bucket=target, **parts.get("pab_args", PAB)),
            "sse": lambda: aws.s3.BucketServerSideEncryptionConfiguration(
                "backups-sse",
                bucket=target,
                rules=[
                    {"apply_server_side_encryption_by_default": {"sse_algorithm": parts.get("algorithm", "aws:kms")}}
                ],
            ),
            "versioning": lambda: aws.s3.BucketVersioning(
                "backups-versioning", bucket=target, versioning_configuration={"status": parts.get("status", "Enabled")}
            ),
            "replication": lambda: aws.s3.BucketReplicationConfig(
                "backups-replication",
                bucket=target,
                role="arn:aws:iam::123456789012:role/replication",
                rules=[{"id": "dr", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::backups-replica"}}],
            ),
            "policy": lambda: aws.s3.BucketPolicy(
                "backups-policy", bucket=target, policy=json.dumps(parts.get("document", TLS_ONLY))
            ),
            "ownership": lambda: aws.s3.BucketOwnershipControls(
                "backups-ownership",
                bucket=target,
                rule={"object_ownership": parts.get("ownership", "BucketOwnerEnforced")},
            ),
        }
        for name, make in settings.items():
            if parts.get(name, True) is not None:
                make()

    return program(build, first_preview=first_preview)


@pytest.mark.parametrize("policy", S3_POLICIES)
@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
@pytest.mark.parametrize("literal_names", [False, True], ids=["by-output", "by-name"])
def test_a_complete_bucket_passes_every_s3_rule(policy: str, first_preview: bool, literal_names: bool) -> None:
    run = s3(first_preview=first_preview, literal_names=literal_names)
    assert messages(policy, run) == []
    assert skipped(policy, run) == []


@pytest.mark.parametrize(
    ("policy", "parts", "expected"),
    [
        ("aws-s3-bucket-public-access-blocked", {"pab": None}, "backups: no public access block."),
        (
            "aws-s3-bucket-public-access-blocked",
            {"pab_args": with_(PAB, restrict_public_buckets=False)},
            "backups: its public access block leaves restrictPublicBuckets off.",
        ),
        (
            "aws-s3-publicaccessblock-all-flags-on",
            {"pab_args": with_(PAB, ignore_public_acls=DELETE)},
            "ignorePublicAcls is not true.",
        ),
        ("aws-s3-bucket-encrypted", {"sse": None}, "backups: no default server-side encryption with KMS (none)."),
        ("aws-s3-bucket-encrypted", {"algorithm": "AES256"}, "backups: no default server-side encryption with KMS"),
        ("aws-s3-bucket-versioned", {"status": "Suspended"}, "backups: versioning is not enabled."),
        ("aws-s3-bucket-backup-replicated", {"replication": None}, "backups: backup bucket has no enabled replication"),
        ("aws-s3-bucket-tls-only", {"policy": None}, "backups: no bucket policy denies aws:SecureTransport false."),
        (
            "aws-s3-bucket-tls-only",
            {"document": {"Statement": [{**TLS_ONLY["Statement"][0], "Condition": {}}]}},
            "backups: no bucket policy denies aws:SecureTransport false.",
        ),
        ("aws-s3-bucket-acls-disabled", {"ownership": "ObjectWriter"}, "backups: ACLs are not disabled"),
    ],
)
def test_s3_each_broken_setting(policy: str, parts: dict[str, Any], expected: str) -> None:
    found = messages(policy, s3(**parts))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_s3_settings_given_inline_on_the_bucket_count() -> None:
    def build() -> None:
        aws.s3.Bucket(
            "inline",
            server_side_encryption_configuration={
                "rule": {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}
            },
            versioning={"enabled": True},
            policy=json.dumps(TLS_ONLY),
            tags={"purpose": "backup"},
            replication_configuration={
                "role": "arn:aws:iam::123456789012:role/r",
                "rules": [{"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::replica"}}],
            },
        )

    for policy in ("aws-s3-bucket-encrypted", "aws-s3-bucket-versioned", "aws-s3-bucket-tls-only"):
        assert messages(policy, program(build)) == [], policy
    assert messages("aws-s3-bucket-backup-replicated", program(build)) == []


def test_s3_managed_keys_may_be_accepted_by_config() -> None:
    config = {"allowedAlgorithms": ["aws:kms", "AES256"]}
    assert messages("aws-s3-bucket-encrypted", s3(algorithm="AES256"), config) == []


def test_an_account_public_access_block_covers_every_bucket() -> None:
    def build(**flags: Any) -> Any:
        return lambda: (aws.s3.Bucket("b"), aws.s3.AccountPublicAccessBlock("account", **with_(PAB, **flags)))

    assert messages("aws-s3-bucket-public-access-blocked", program(build())) == []
    assert messages("aws-s3-publicaccessblock-all-flags-on", program(build())) == []
    half = program(build(block_public_policy=False))
    assert messages("aws-s3-bucket-public-access-blocked", half) == ["b: no public access block."]
    assert messages("aws-s3-publicaccessblock-all-flags-on", half) == ["blockPublicPolicy is not true."]
    bare = program(lambda: aws.s3.Bucket("b"))
    assert messages("aws-s3-bucket-public-access-blocked", bare, {"accountPublicAccessBlock": True}) == []


def test_one_unknown_flag_does_not_switch_the_rule_off_for_other_buckets() -> None:
    """Per bucket: the one whose block is not known yet is reported as undetermined; the bare one still fails,
    whatever the order."""

    def build(first: str) -> Any:
        def make() -> None:
            names = ["open", "pending"] if first == "open" else ["pending", "open"]
            for name in names:
                bucket = aws.s3.Bucket(name, bucket=name)
                if name == "pending":
                    flag = bucket.arn.apply(lambda _: True)  # unknown during preview
                    aws.s3.BucketPublicAccessBlock(
                        f"{name}-pab", bucket=bucket.id, **with_(PAB, block_public_acls=flag)
                    )

        return make

    policy = "aws-s3-bucket-public-access-blocked"
    for first in ("open", "pending"):
        run = program(build(first), first_preview=True)
        assert messages(policy, run) == ["open: no public access block."]
        assert [r.split(":", 1)[0] for r in skipped(policy, run)] == ["pending"]


@pytest.mark.parametrize(
    "build",
    [
        lambda: aws.s3.BucketAcl("acl", bucket="b", acl="public-read"),
        lambda: aws.s3.Bucket("b", acl="public-read-write"),
        lambda: aws.s3.BucketAcl(
            "acl",
            bucket="b",
            access_control_policy={
                "owner": {"id": "owner"},
                "grants": [
                    {
                        "permission": "READ",
                        "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                    }
                ],
            },
        ),
    ],
    ids=["canned-acl", "inline-acl", "grant"],
)
def test_public_acls(build: Any) -> None:
    policy = "aws-s3-bucket-no-public-acl"
    assert messages(policy, program(lambda: aws.s3.BucketAcl("acl", bucket="b", acl="private"))) == []
    assert len(messages(policy, program(build))) == 1


def test_replication_only_required_of_backup_buckets() -> None:
    plain = program(lambda: aws.s3.Bucket("logs", tags={"purpose": "logs"}))
    assert messages("aws-s3-bucket-backup-replicated", plain) == []


# -- KMS, EBS, DynamoDB, ECR --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"enable_key_rotation": True}, []),
        ({}, ["enableKeyRotation is not true."]),
        ({"customer_master_key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY"}, []),
        ({"customer_master_key_spec": "HMAC_256", "key_usage": "GENERATE_VERIFY_MAC"}, []),
        ({"customer_master_key_spec": "ECC_NIST_P256", "key_usage": "SIGN_VERIFY"}, []),
    ],
    ids=["rotating", "not-rotating", "rsa", "hmac", "ecc"],
)
def test_kms_rotation_only_where_aws_can_rotate(args: dict[str, Any], expected: list[str]) -> None:
    assert messages("aws-kms-key-rotation", program(lambda: aws.kms.Key("k", **args))) == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda flag: aws.kms.Key("k", enable_key_rotation=True, bypass_policy_lockout_safety_check=flag),
        lambda flag: aws.kms.KeyPolicy("kp", key_id="k", policy="{}", bypass_policy_lockout_safety_check=flag),
    ],
    ids=["key", "key-policy"],
)
def test_kms_lockout_bypass(build: Any) -> None:
    policy = "aws-kms-key-no-lockout-bypass"
    assert messages(policy, program(lambda: build(False))) == []
    assert messages(policy, program(lambda: build(True))) == ["bypassPolicyLockoutSafetyCheck is true."]


@pytest.mark.parametrize(
    ("ok", "broken", "expected"),
    [
        (
            lambda: aws.ebs.Volume("v", availability_zone="us-east-1a", size=100, encrypted=True),
            lambda: aws.ebs.Volume("v", availability_zone="us-east-1a", size=100),
            "volume is not encrypted.",
        ),
        (
            lambda: aws.ec2.Instance(
                "i", ami="ami-1", instance_type="m6i.large", root_block_device={"encrypted": True}
            ),
            lambda: aws.ec2.Instance(
                "i",
                ami="ami-1",
                instance_type="m6i.large",
                root_block_device={"encrypted": True},
                ebs_block_devices=[{"device_name": "/dev/sdf", "volume_size": 10}],
            ),
            "ebs block device /dev/sdf is not encrypted.",
        ),
        (
            lambda: aws.ec2.LaunchTemplate(
                "lt", block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"encrypted": "true"}}]
            ),
            lambda: aws.ec2.LaunchTemplate(
                "lt", block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"encrypted": "false"}}]
            ),
            "block device /dev/xvda is not encrypted.",
        ),
        (
            lambda: aws.ec2.LaunchConfiguration(
                "lc", image_id="ami-1", instance_type="m6i.large", root_block_device={"encrypted": True}
            ),
            lambda: aws.ec2.LaunchConfiguration("lc", image_id="ami-1", instance_type="m6i.large"),
            "root block device is not encrypted.",
        ),
    ],
    ids=["volume", "instance", "launch-template", "launch-configuration"],
)
def test_ebs(ok: Any, broken: Any, expected: str) -> None:
    policy = "aws-ebs-volume-encrypted"
    assert messages(policy, program(ok)) == []
    assert messages(policy, program(broken)) == [expected]
    # The account encrypts every new volume: the remediation the rule itself recommends.
    assert messages(policy, program(broken), {"accountEncryptionByDefault": True}) == []


def test_ebs_encryption_by_default_stays_on() -> None:
    policy = "aws-ebs-encryption-by-default-enabled"
    assert messages(policy, program(lambda: aws.ebs.EncryptionByDefault("e", enabled=True))) == []
    assert messages(policy, program(lambda: aws.ebs.EncryptionByDefault("e", enabled=False))) == ["enabled is false."]


def test_dynamodb_point_in_time_recovery() -> None:
    def table(**kw: Any) -> Any:
        return program(
            lambda: aws.dynamodb.Table(
                "t", hash_key="id", attributes=[{"name": "id", "type": "S"}], billing_mode="PAY_PER_REQUEST", **kw
            )
        )

    policy = "aws-dynamodb-table-point-in-time-recovery"
    assert messages(policy, table(point_in_time_recovery={"enabled": True})) == []
    assert messages(policy, table()) == ["pointInTimeRecovery.enabled is not true."]


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-ecr-repository-immutable-tags", {"image_tag_mutability": "MUTABLE"}, "image tags are mutable."),
        (
            "aws-ecr-repository-scan-on-push",
            {"image_scanning_configuration": {"scan_on_push": False}},
            "imageScanningConfiguration.scanOnPush is not true.",
        ),
    ],
)
def test_ecr(policy: str, change: dict[str, Any], expected: str) -> None:
    base = {"image_tag_mutability": "IMMUTABLE", "image_scanning_configuration": {"scan_on_push": True}}
    assert messages(policy, program(lambda: aws.ecr.Repository("r", **base))) == []
    assert messages(policy, program(lambda: aws.ecr.Repository("r", **with_(base, **change)))) == [expected]


def test_required_tags_count_provider_default_tags() -> None:
    policy = "aws-resource-required-tags"
    tags = {"owner": "o", "cost-centre": "c", "environment": "prod"}

    def build(default_tags: dict[str, str] | None, own: dict[str, str] | None = None) -> Any:
        def make() -> None:
            provider = aws.Provider(
                "aws", region="us-east-1", default_tags={"tags": default_tags} if default_tags else None
            )
            aws.s3.Bucket("b", tags=own, opts=pulumi.ResourceOptions(provider=provider))

        return program(make)

    assert messages(policy, build(tags)) == []
    assert messages(policy, build({"owner": "x"})) == ["missing tags cost-centre, environment."]
    assert messages(policy, build({"owner": "x"}, {"cost-centre": "c", "environment": "prod"})) == []
    assert messages(policy, build(None)) == ["missing tags owner, cost-centre, environment."]


def test_efs_encrypted() -> None:
    policy = "aws-efs-filesystem-encrypted"
    assert messages(policy, program(lambda: aws.efs.FileSystem("fs", encrypted=True))) == []
    assert messages(policy, program(lambda: aws.efs.FileSystem("fs"))) == ["encrypted is not true."]
