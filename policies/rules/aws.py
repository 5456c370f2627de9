"""AWS data and storage rules: databases, caches, buckets, keys and disks encrypted, never public,
backed up and protected; registries that keep what they scanned.

Bucket settings live on their own resources (public access block, encryption, versioning,
replication, policy, ownership), tied to the bucket through their `bucket` input (an output of the
bucket, or its name written literally) or set inline on the bucket: the S3 rules join them per
bucket, so they are stack rules; what must stop a resource being created (a public ACL, an
incomplete public access block) is a resource rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule, tags_of
from policies.model.iam import Statement, statements
from policies.model.subject import StackView, Subject
from policies.model.values import (
    Unknown,
    dig,
    flag,
    is_set,
    items,
    json_document,
    mapping,
    number,
    one_or_many,
    read,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
ELASTICACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
ENCRYPTION_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
REPLICATIONS = ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",)
BUCKET_POLICIES = ("aws:s3/bucketPolicy:BucketPolicy",)
OWNERSHIP_CONTROLS = ("aws:s3/bucketOwnershipControls:BucketOwnershipControls",)
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
EBS_VOLUME = "aws:ebs/volume:Volume"
EBS_DEFAULT_ENCRYPTION = "aws:ebs/encryptionByDefault:EncryptionByDefault"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
DYNAMODB_TABLE = "aws:dynamodb/table:Table"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
EFS_FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
TAGGABLE = (
    RDS_INSTANCE,
    RDS_CLUSTER,
    ELASTICACHE,
    *BUCKETS,
    KMS_KEY,
    EBS_VOLUME,
    EC2_INSTANCE,
    DYNAMODB_TABLE,
    ECR_REPOSITORY,
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/eip:Eip",
    "aws:ec2/flowLog:FlowLog",
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:cloudtrail/trail:Trail",
    "aws:route53/healthCheck:HealthCheck",
    "aws:iam/role:Role",
)
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_CANNED_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def _is_true(value: Any) -> bool:
    return flag(value) is True


def _is_replica(subject: Subject) -> bool:
    return bool(subject.get("replicateSourceDb"))


# -- RDS ------------------------------------------------------------------------------------

RDS_ENCRYPTED = Rule(
    "aws-rds-instance-encrypted",
    "RDS instances and clusters must encrypt storage at rest.",
    Severity.HIGH,
    "Set storage_encrypted=True (with kms_key_id for a customer key). Read replicas inherit it from the source.",
    Category.SECURITY,
)


def _rds_encrypted(subject: Subject, ctx: Ctx) -> None:
    if subject.resource_type == RDS_INSTANCE and _is_replica(subject):
        return
    if not _is_true(subject.get("storageEncrypted")):
        ctx.violation("storageEncrypted is not true.")


RDS_NOT_PUBLIC = Rule(
    "aws-rds-instance-not-public",
    "RDS and Aurora instances must not be publicly accessible.",
    Severity.CRITICAL,
    "Set publicly_accessible=False and reach the database through private subnets.",
    Category.SECURITY,
)


def _rds_not_public(subject: Subject, ctx: Ctx) -> None:
    if _is_true(subject.get("publiclyAccessible")):
        ctx.violation("publiclyAccessible is true.")


RDS_BACKUPS = Rule(
    "aws-rds-instance-backup-retention",
    "RDS primaries and clusters must keep automated backups for at least the configured days.",
    Severity.HIGH,
    "Set backup_retention_period to 7 or more.",
    Category.SECURITY,
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 7}},
)


def _rds_backups(subject: Subject, ctx: Ctx) -> None:
    if subject.resource_type == RDS_INSTANCE and _is_replica(subject):
        return
    minimum = int(ctx.config["minimumDays"])
    days = number(subject.get("backupRetentionPeriod")) or 0
    if days < minimum:
        ctx.violation(f"backupRetentionPeriod is {days:g} days; at least {minimum} required.")


RDS_DELETION_PROTECTION = Rule(
    "aws-rds-instance-deletion-protection",
    "In prod and dr, RDS instances and clusters must have deletion protection.",
    Severity.HIGH,
    "Set deletion_protection=True (and keep protect=True on the resource).",
    Category.SECURITY,
)


def _rds_deletion_protection(subject: Subject, ctx: Ctx) -> None:
    if ctx.strict and not _is_true(subject.get("deletionProtection")):
        ctx.violation("deletionProtection is not true.")


RDS_MULTI_AZ = Rule(
    "aws-rds-instance-multi-az",
    "In prod and dr, RDS instances must be multi-AZ and clusters must not be pinned to one zone.",
    Severity.MEDIUM,
    "Set multi_az=True on instances; give clusters at least two availability_zones (or none).",
    Category.SECURITY,
)


def _rds_multi_az(subject: Subject, ctx: Ctx) -> None:
    if not ctx.strict:
        return
    if subject.resource_type == RDS_INSTANCE:
        if not _is_true(subject.get("multiAz")):
            ctx.violation("multiAz is not true.")
        return
    zones = subject.get("availabilityZones")
    if zones is not None and len(items(zones)) < 2:
        ctx.violation(f"availabilityZones names {len(items(zones))} zone; at least 2 required.")


RDS_INSIGHTS = Rule(
    "aws-rds-instance-performance-insights-encrypted",
    "RDS and Aurora instances with Performance Insights must encrypt it with a KMS key.",
    Severity.HIGH,
    "Set performance_insights_kms_key_id to the database's customer managed key.",
    Category.SECURITY,
)


def _rds_insights(subject: Subject, ctx: Ctx) -> None:
    enabled = _is_true(subject.get("performanceInsightsEnabled"))
    if enabled and not is_set(lambda: subject.get("performanceInsightsKmsKeyId")):
        ctx.violation("Performance Insights is enabled without performanceInsightsKmsKeyId.")


# -- ElastiCache ----------------------------------------------------------------------------

ELASTICACHE_ENCRYPTED = Rule(
    "aws-elasticache-replicationgroup-encrypted",
    "ElastiCache replication groups must encrypt at rest and in transit.",
    Severity.HIGH,
    "Set at_rest_encryption_enabled=True and transit_encryption_enabled=True.",
    Category.SECURITY,
)


def _elasticache_encrypted(subject: Subject, ctx: Ctx) -> None:
    for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled"):
        if not _is_true(subject.get(key)):
            ctx.violation(f"{key} is not true.")


ELASTICACHE_AUTH = Rule(
    "aws-elasticache-replicationgroup-auth-token",
    "ElastiCache replication groups must authenticate clients: an AUTH token or RBAC user groups.",
    Severity.HIGH,
    "Set auth_token from a pulumi_random.RandomPassword (a Pulumi secret), or user_group_ids (RBAC); both need "
    "transit encryption.",
    Category.SECURITY,
)


def _elasticache_auth(subject: Subject, ctx: Ctx) -> None:
    # An unknown token or group list is computed at deploy time (a generated password): it is set.
    tokens = [read(lambda: subject.get("authToken")), read(lambda: subject.get("authTokenWo"))]
    groups = read(lambda: subject.get("userGroupIds"))
    if any(isinstance(v, Unknown) for v in (*tokens, groups)):
        return
    if not any(tokens) and not items(groups):
        ctx.violation("authToken is not set and no userGroupIds are given.")


ELASTICACHE_SNAPSHOTS = Rule(
    "aws-elasticache-replicationgroup-snapshots",
    "ElastiCache replication groups must retain automatic snapshots.",
    Severity.MEDIUM,
    "Set snapshot_retention_limit to 1 or more (and final_snapshot_identifier).",
    Category.SECURITY,
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 1}},
)


def _elasticache_snapshots(subject: Subject, ctx: Ctx) -> None:
    minimum = int(ctx.config["minimumDays"])
    days = number(subject.get("snapshotRetentionLimit")) or 0
    if days < minimum:
        ctx.violation(f"snapshotRetentionLimit is {days:g}; at least {minimum} required.")


# -- S3 -------------------------------------------------------------------------------------


def _bucket_names(bucket: Subject) -> list[str]:
    name = read(lambda: bucket.get("bucket"))
    return [name] if isinstance(name, str) and name else []


def _settings(view: StackView, bucket: Subject, types: Iterable[str]) -> list[Subject]:
    """The bucket's settings resources of `types` (by output dependency or literal name)."""
    return view.referencing(bucket, types, "bucket", _bucket_names(bucket))


def _blocks_off(block: Subject) -> list[str]:
    return [name for name in PAB_FLAGS if not _is_true(block.get(name))]


S3_PUBLIC_ACCESS = Rule(
    "aws-s3-bucket-public-access-blocked",
    "Every S3 bucket must be covered by a public access block with all four settings on (its own, or the account's).",
    Severity.CRITICAL,
    "Add aws.s3.BucketPublicAccessBlock(bucket=bucket.id) with block_public_acls, block_public_policy, "
    "ignore_public_acls and restrict_public_buckets all True (or an AccountPublicAccessBlock).",
    Category.SECURITY,
    config={
        "accountPublicAccessBlock": {
            "type": "boolean",
            "default": False,
            "description": "The account's public access block (all four settings) is set outside this stack.",
        }
    },
)


def _s3_public_access(view: StackView, ctx: Ctx) -> None:
    if ctx.config["accountPublicAccessBlock"]:
        return
    accounts = view.of_type(ACCOUNT_PUBLIC_ACCESS_BLOCK)
    if any(not read(partial(_blocks_off, a)) for a in accounts):
        return

    def check(bucket: Subject) -> None:
        blocks = _settings(view, bucket, [PUBLIC_ACCESS_BLOCK])
        if not blocks:
            ctx.violation(f"{bucket.name}: no public access block.", bucket.urn)
            return
        incomplete = [off for off in (_blocks_off(b) for b in blocks) if off]
        if len(incomplete) == len(blocks):
            ctx.violation(f"{bucket.name}: its public access block leaves {', '.join(incomplete[0])} off.", bucket.urn)

    ctx.each(view.of_type(*BUCKETS), check)


PAB_COMPLETE = Rule(
    "aws-s3-publicaccessblock-all-flags-on",
    "A public access block (a bucket's or the account's) must turn all four settings on.",
    Severity.CRITICAL,
    "Set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets to True.",
    Category.SECURITY,
)


def _pab_complete(subject: Subject, ctx: Ctx) -> None:
    off = _blocks_off(subject)
    if off:
        ctx.violation(f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} not true.")


S3_ENCRYPTED = Rule(
    "aws-s3-bucket-encrypted",
    "Every S3 bucket must have default server-side encryption with KMS.",
    Severity.HIGH,
    "Add aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and the bucket's key.",
    Category.SECURITY,
    config={
        "allowedAlgorithms": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["aws:kms", "aws:kms:dsse"],
            "description": "Default encryption algorithms accepted (add AES256 to accept S3-managed keys).",
        }
    },
)


def _rules_of(node: Any) -> list[Any]:
    """`rule`/`rules` blocks whether given as one object or a list (pulumi-aws 7 flattened them)."""
    return [*one_or_many(mapping(node).get("rule")), *items(mapping(node).get("rules"))]


def _s3_encrypted(view: StackView, ctx: Ctx) -> None:
    def check(bucket: Subject) -> None:
        configs = [c.props for c in _settings(view, bucket, ENCRYPTION_CONFIGS)]
        configs += one_or_many(bucket.get("serverSideEncryptionConfiguration"))
        algorithms = [
            dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for c in configs for rule in _rules_of(c)
        ]
        if not any(a in ctx.config["allowedAlgorithms"] for a in algorithms):
            found = ", ".join(sorted({str(a) for a in algorithms if a})) or "none"
            ctx.violation(f"{bucket.name}: no default server-side encryption with KMS ({found}).", bucket.urn)

    ctx.each(view.of_type(*BUCKETS), check)


S3_VERSIONED = Rule(
    "aws-s3-bucket-versioned",
    "Every S3 bucket must have versioning enabled.",
    Severity.MEDIUM,
    "Add aws.s3.BucketVersioning with versioning_configuration status 'Enabled'.",
    Category.SECURITY,
)


def _s3_versioned(view: StackView, ctx: Ctx) -> None:
    def check(bucket: Subject) -> None:
        statuses = [dig(v.props, "versioningConfiguration", "status") for v in _settings(view, bucket, VERSIONINGS)]
        inline = _is_true(dig(bucket.props, "versioning", "enabled"))
        if "Enabled" not in statuses and not inline:
            ctx.violation(f"{bucket.name}: versioning is not enabled.", bucket.urn)

    ctx.each(view.of_type(*BUCKETS), check)


S3_BACKUP_REPLICATED = Rule(
    "aws-s3-bucket-backup-replicated",
    "Backup buckets (tagged purpose=backup) must replicate to another region.",
    Severity.HIGH,
    "Add aws.s3.BucketReplicationConfig with an enabled rule to the DR region's bucket.",
    Category.SECURITY,
    config={
        "tagKey": {"type": "string", "default": "purpose"},
        "tagValue": {"type": "string", "default": "backup"},
    },
)


def _s3_backup_replicated(view: StackView, ctx: Ctx) -> None:
    def check(bucket: Subject) -> None:
        if tags_of(bucket).get(ctx.config["tagKey"]) != ctx.config["tagValue"]:
            return
        configs = [r.props for r in _settings(view, bucket, REPLICATIONS)]
        configs += one_or_many(bucket.get("replicationConfiguration"))
        if not any(mapping(rule).get("status") == "Enabled" for c in configs for rule in _rules_of(c)):
            ctx.violation(f"{bucket.name}: backup bucket has no enabled replication rule.", bucket.urn)

    ctx.each(view.of_type(*BUCKETS), check)


S3_TLS_ONLY = Rule(
    "aws-s3-bucket-tls-only",
    "Every S3 bucket's policy must deny requests that do not use TLS.",
    Severity.HIGH,
    "Add an aws.s3.BucketPolicy statement: Effect Deny, Principal *, Action s3:*, on the bucket and its objects, "
    'Condition {"Bool": {"aws:SecureTransport": "false"}}.',
    Category.SECURITY,
)


def _denies_plain_http(statement: Statement) -> bool:
    if statement.allow or not statement.public_principal:
        return False
    if not any(a in ("*", "s3:*") for a in statement.actions or ()):
        return False
    for operator, clauses in statement.conditions.items():
        if str(operator).lower() != "bool":
            continue
        for key, values in mapping(clauses).items():
            if str(key).lower() == "aws:securetransport" and any(
                str(v).lower() == "false" for v in one_or_many(values)
            ):
                return True
    return False


def _s3_tls_only(view: StackView, ctx: Ctx) -> None:
    def check(bucket: Subject) -> None:
        documents = [p.get("policy") for p in _settings(view, bucket, BUCKET_POLICIES)] + [bucket.get("policy")]
        found: list[Statement] = []
        for document in documents:
            if document is None:
                continue
            try:
                found.extend(statements(json_document(document), "policy"))
            except ValueError:
                continue
        if not any(_denies_plain_http(s) for s in found):
            ctx.violation(f"{bucket.name}: no bucket policy denies aws:SecureTransport false.", bucket.urn)

    ctx.each(view.of_type(*BUCKETS), check)


S3_ACLS_DISABLED = Rule(
    "aws-s3-bucket-acls-disabled",
    "Every S3 bucket must disable ACLs (object ownership BucketOwnerEnforced).",
    Severity.MEDIUM,
    "Add aws.s3.BucketOwnershipControls with rule object_ownership 'BucketOwnerEnforced'.",
    Category.SECURITY,
)


def _s3_acls_disabled(view: StackView, ctx: Ctx) -> None:
    def check(bucket: Subject) -> None:
        owners = [dig(c.props, "rule", "objectOwnership") for c in _settings(view, bucket, OWNERSHIP_CONTROLS)]
        owners += [
            dig(r, "objectOwnership")
            for c in _settings(view, bucket, OWNERSHIP_CONTROLS)
            for r in items(c.get("rules"))
        ]
        if "BucketOwnerEnforced" not in owners:
            ctx.violation(
                f"{bucket.name}: ACLs are not disabled (no BucketOwnerEnforced ownership control).", bucket.urn
            )

    ctx.each(view.of_type(*BUCKETS), check)


S3_NO_PUBLIC_ACL = Rule(
    "aws-s3-bucket-no-public-acl",
    "No S3 bucket ACL may grant access to everyone or to every AWS account.",
    Severity.CRITICAL,
    "Remove the public-read, public-read-write or authenticated-read ACL (or AllUsers/AuthenticatedUsers grants); "
    "disable ACLs with BucketOwnershipControls.",
    Category.SECURITY,
)


def _s3_no_public_acl(subject: Subject, ctx: Ctx) -> None:
    acl = subject.get("acl")
    if acl in PUBLIC_CANNED_ACLS:
        ctx.violation(f"acl is {acl}.")
    grants = [*items(subject.get("grants")), *items(dig(subject.props, "accessControlPolicy", "grants"))]
    for grant in grants:
        uri = mapping(grant).get("uri") or dig(grant, "grantee", "uri")
        if uri in PUBLIC_GRANTEES:
            ctx.violation(f"a grant gives {str(uri).rsplit('/', 1)[-1]} access.")


# -- KMS ------------------------------------------------------------------------------------

KMS_ROTATION = Rule(
    "aws-kms-key-rotation",
    "Symmetric encryption KMS keys must rotate automatically.",
    Severity.MEDIUM,
    "Set enable_key_rotation=True (AWS rotates only symmetric ENCRYPT_DECRYPT keys; RSA, ECC and HMAC keys "
    "are exempt).",
    Category.SECURITY,
)


def _kms_rotation(subject: Subject, ctx: Ctx) -> None:
    spec = subject.get("customerMasterKeySpec") or subject.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = subject.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec == "SYMMETRIC_DEFAULT" and usage == "ENCRYPT_DECRYPT" and not _is_true(subject.get("enableKeyRotation")):
        ctx.violation("enableKeyRotation is not true.")


KMS_LOCKOUT = Rule(
    "aws-kms-key-no-lockout-bypass",
    "KMS keys and key policies must not bypass the policy lockout safety check.",
    Severity.CRITICAL,
    "Remove bypass_policy_lockout_safety_check (a policy that locks everyone out makes the key unmanageable).",
    Category.SECURITY,
)


def _kms_lockout(subject: Subject, ctx: Ctx) -> None:
    if _is_true(subject.get("bypassPolicyLockoutSafetyCheck")):
        ctx.violation("bypassPolicyLockoutSafetyCheck is true.")


# -- EBS ------------------------------------------------------------------------------------

EBS_ENCRYPTED = Rule(
    "aws-ebs-volume-encrypted",
    "EBS volumes and the disks of instances, launch templates and launch configurations must be encrypted.",
    Severity.HIGH,
    "Set encrypted=True on the volume or block device, or turn on the account's EBS encryption by default "
    "(aws.ebs.EncryptionByDefault) and say so with this policy's accountEncryptionByDefault.",
    Category.SECURITY,
    config={
        "accountEncryptionByDefault": {
            "type": "boolean",
            "default": False,
            "description": "EBS encryption by default is on in the account and region: AWS encrypts every new volume.",
        }
    },
)


def _ebs_disks(subject: Subject) -> list[tuple[str, Any]]:
    props = subject.props
    if subject.resource_type == EBS_VOLUME:
        return [("volume", props)]
    if subject.resource_type in (EC2_INSTANCE, LAUNCH_CONFIGURATION):
        disks = [("root block device", mapping(props.get("rootBlockDevice")))]
        return disks + [
            (f"ebs block device {mapping(d).get('deviceName')}", d) for d in items(props.get("ebsBlockDevices"))
        ]
    return [
        (f"block device {mapping(m).get('deviceName')}", mapping(m).get("ebs"))
        for m in items(props.get("blockDeviceMappings"))
        if mapping(m).get("ebs") is not None
    ]


def _ebs_encrypted(subject: Subject, ctx: Ctx) -> None:
    if ctx.config["accountEncryptionByDefault"]:
        return
    for label, disk in _ebs_disks(subject):
        if not _is_true(mapping(disk).get("encrypted")):
            ctx.violation(f"{label} is not encrypted.")


EBS_DEFAULT = Rule(
    "aws-ebs-encryption-by-default-enabled",
    "The account's EBS encryption by default, when a stack manages it, must be on.",
    Severity.HIGH,
    "Set enabled=True on aws.ebs.EncryptionByDefault.",
    Category.SECURITY,
)


def _ebs_default(subject: Subject, ctx: Ctx) -> None:
    if flag(subject.get("enabled")) is False:
        ctx.violation("enabled is false.")


# -- DynamoDB, ECR --------------------------------------------------------------------------

DYNAMODB_PITR = Rule(
    "aws-dynamodb-table-point-in-time-recovery",
    "DynamoDB tables must have point-in-time recovery.",
    Severity.HIGH,
    "Set point_in_time_recovery.enabled=True.",
    Category.SECURITY,
)


def _dynamodb_pitr(subject: Subject, ctx: Ctx) -> None:
    if not _is_true(dig(subject.props, "pointInTimeRecovery", "enabled")):
        ctx.violation("pointInTimeRecovery.enabled is not true.")


ECR_IMMUTABLE = Rule(
    "aws-ecr-repository-immutable-tags",
    "ECR repositories must make image tags immutable.",
    Severity.HIGH,
    "Set image_tag_mutability='IMMUTABLE'.",
    Category.SECURITY,
)


def _ecr_immutable(subject: Subject, ctx: Ctx) -> None:
    if not str(subject.get("imageTagMutability") or "MUTABLE").startswith("IMMUTABLE"):
        ctx.violation("image tags are mutable.")


ECR_SCAN = Rule(
    "aws-ecr-repository-scan-on-push",
    "ECR repositories must scan images on push.",
    Severity.HIGH,
    "Set image_scanning_configuration.scan_on_push=True.",
    Category.SECURITY,
)


def _ecr_scan(subject: Subject, ctx: Ctx) -> None:
    if not _is_true(dig(subject.props, "imageScanningConfiguration", "scanOnPush")):
        ctx.violation("imageScanningConfiguration.scanOnPush is not true.")


EFS_ENCRYPTED = Rule(
    "aws-efs-filesystem-encrypted",
    "EFS file systems must encrypt at rest.",
    Severity.HIGH,
    "Set encrypted=True (with kms_key_id for a customer key).",
    Category.SECURITY,
)


def _efs_encrypted(subject: Subject, ctx: Ctx) -> None:
    if not _is_true(subject.get("encrypted")):
        ctx.violation("encrypted is not true.")


REQUIRED_TAGS = Rule(
    "aws-resource-required-tags",
    "Taggable AWS resources must carry the cost tags (the AWS provider's default_tags count).",
    Severity.LOW,
    "Set the tags on the explicit aws.Provider's default_tags (components/tags.py) or on the resource.",
    Category.HYGIENE,
    config={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["owner", "cost-centre", "environment"],
        }
    },
)


def _required_tags(subject: Subject, ctx: Ctx) -> None:
    tags = tags_of(subject)
    missing = [t for t in ctx.config["requiredTags"] if not tags.get(t)]
    if missing:
        ctx.violation(f"missing tags {', '.join(missing)}.")


POLICIES = [
    RDS_ENCRYPTED.resource([RDS_INSTANCE, RDS_CLUSTER], _rds_encrypted),
    RDS_NOT_PUBLIC.resource([RDS_INSTANCE, RDS_CLUSTER_INSTANCE], _rds_not_public),
    RDS_BACKUPS.resource([RDS_INSTANCE, RDS_CLUSTER], _rds_backups),
    RDS_DELETION_PROTECTION.resource([RDS_INSTANCE, RDS_CLUSTER], _rds_deletion_protection),
    RDS_MULTI_AZ.resource([RDS_INSTANCE, RDS_CLUSTER], _rds_multi_az),
    RDS_INSIGHTS.resource([RDS_INSTANCE, RDS_CLUSTER_INSTANCE], _rds_insights),
    ELASTICACHE_ENCRYPTED.resource([ELASTICACHE], _elasticache_encrypted),
    ELASTICACHE_AUTH.resource([ELASTICACHE], _elasticache_auth),
    ELASTICACHE_SNAPSHOTS.resource([ELASTICACHE], _elasticache_snapshots),
    S3_PUBLIC_ACCESS.stack(_s3_public_access),
    PAB_COMPLETE.resource([PUBLIC_ACCESS_BLOCK, ACCOUNT_PUBLIC_ACCESS_BLOCK], _pab_complete),
    S3_ENCRYPTED.stack(_s3_encrypted),
    S3_VERSIONED.stack(_s3_versioned),
    S3_BACKUP_REPLICATED.stack(_s3_backup_replicated),
    S3_TLS_ONLY.stack(_s3_tls_only),
    S3_ACLS_DISABLED.stack(_s3_acls_disabled),
    S3_NO_PUBLIC_ACL.resource([*BUCKETS, *BUCKET_ACLS], _s3_no_public_acl),
    KMS_ROTATION.resource([KMS_KEY], _kms_rotation),
    KMS_LOCKOUT.resource([KMS_KEY, KMS_KEY_POLICY], _kms_lockout),
    EBS_ENCRYPTED.resource([EBS_VOLUME, EC2_INSTANCE, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION], _ebs_encrypted),
    EBS_DEFAULT.resource([EBS_DEFAULT_ENCRYPTION], _ebs_default),
    DYNAMODB_PITR.resource([DYNAMODB_TABLE], _dynamodb_pitr),
    ECR_IMMUTABLE.resource([ECR_REPOSITORY], _ecr_immutable),
    ECR_SCAN.resource([ECR_REPOSITORY], _ecr_scan),
    EFS_ENCRYPTED.resource([EFS_FILE_SYSTEM], _efs_encrypted),
    REQUIRED_TAGS.resource(TAGGABLE, _required_tags),
]
