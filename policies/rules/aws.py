"""AWS security rules: data encrypted, never public, backed up, protected; tight network and IAM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)
from pulumi_policy.proxy import UnknownValueError

from policies.common import (
    DATA_PORTS,
    ENVIRONMENT_PROPERTY,
    Category,
    Rule,
    as_list,
    config_of,
    ranges_opened,
    resource_policy,
    stack_policy,
    strict_environment,
    tags_of,
    truthy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
ELASTICACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
KMS_KEY = "aws:kms/key:Key"
EBS_VOLUME = "aws:ebs/volume:Volume"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
IAM_POLICIES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
TAGGABLE = (
    RDS_INSTANCE,
    RDS_CLUSTER,
    ELASTICACHE,
    *BUCKETS,
    KMS_KEY,
    EBS_VOLUME,
    EC2_INSTANCE,
    SECURITY_GROUP,
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
# Data ports of the platform's stores, plus SSH: never reachable from the internet.
SSH_AND_DATA_PORTS = ((22, 22), *DATA_PORTS)
WORLD = ("0.0.0.0/0", "::/0")


def _is_replica(props: Mapping[str, Any]) -> bool:
    return bool(props.get("replicateSourceDb"))


# -- RDS ------------------------------------------------------------------------------------

RDS_ENCRYPTED = Rule(
    "aws-rds-instance-encrypted",
    "RDS instances and clusters must encrypt storage at rest.",
    Severity.HIGH,
    "Set storage_encrypted=True (with kms_key_id for a customer key). Read replicas inherit it from the source.",
    Category.SECURITY,
)


def _rds_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and _is_replica(args.props):
        return
    if not truthy(args.props.get("storageEncrypted")):
        report("storageEncrypted is not true.", None)


RDS_NOT_PUBLIC = Rule(
    "aws-rds-instance-not-public",
    "RDS instances must not be publicly accessible.",
    Severity.CRITICAL,
    "Set publicly_accessible=False and reach the database through private subnets.",
    Category.SECURITY,
)


def _rds_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if truthy(args.props.get("publiclyAccessible")):
        report("publiclyAccessible is true.", None)


RDS_BACKUPS = Rule(
    "aws-rds-instance-backup-retention",
    "RDS primaries must keep automated backups for at least the configured days.",
    Severity.HIGH,
    "Set backup_retention_period to 7 or more.",
    Category.SECURITY,
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 7}},
)


def _rds_backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and _is_replica(args.props):
        return
    minimum = int(config_of(args, RDS_BACKUPS)["minimumDays"])
    days = args.props.get("backupRetentionPeriod") or 0
    if float(days) < minimum:
        report(f"backupRetentionPeriod is {days:g} days; at least {minimum} required.", None)


RDS_DELETION_PROTECTION = Rule(
    "aws-rds-instance-deletion-protection",
    "In prod and dr, RDS instances and clusters must have deletion protection.",
    Severity.HIGH,
    "Set deletion_protection=True (and keep protect=True on the resource).",
    Category.SECURITY,
    config=ENVIRONMENT_PROPERTY,
)


def _rds_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if strict_environment(args, RDS_DELETION_PROTECTION) and not truthy(args.props.get("deletionProtection")):
        report("deletionProtection is not true.", None)


RDS_MULTI_AZ = Rule(
    "aws-rds-instance-multi-az",
    "In prod and dr, RDS instances must be multi-AZ.",
    Severity.MEDIUM,
    "Set multi_az=True.",
    Category.SECURITY,
    config=ENVIRONMENT_PROPERTY,
)


def _rds_multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if strict_environment(args, RDS_MULTI_AZ) and not truthy(args.props.get("multiAz")):
        report("multiAz is not true.", None)


# -- ElastiCache ----------------------------------------------------------------------------

ELASTICACHE_ENCRYPTED = Rule(
    "aws-elasticache-replicationgroup-encrypted",
    "ElastiCache replication groups must encrypt at rest and in transit.",
    Severity.HIGH,
    "Set at_rest_encryption_enabled=True and transit_encryption_enabled=True.",
    Category.SECURITY,
)


def _elasticache_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled"):
        if not truthy(args.props.get(key)):
            report(f"{key} is not true.", None)


ELASTICACHE_AUTH = Rule(
    "aws-elasticache-replicationgroup-auth-token",
    "ElastiCache replication groups must require an AUTH token.",
    Severity.HIGH,
    "Set auth_token from a pulumi_random.RandomPassword (a Pulumi secret); it needs transit encryption.",
    Category.SECURITY,
)


def _elasticache_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    try:
        token = args.props.get("authToken")
    except UnknownValueError:
        return  # computed at deploy time (a generated password): it is set
    if not token:
        report("authToken is not set.", None)


ELASTICACHE_SNAPSHOTS = Rule(
    "aws-elasticache-replicationgroup-snapshots",
    "ElastiCache replication groups must retain automatic snapshots.",
    Severity.MEDIUM,
    "Set snapshot_retention_limit to 1 or more (and final_snapshot_identifier).",
    Category.SECURITY,
    config={"minimumDays": {"type": "integer", "minimum": 1, "default": 1}},
)


def _elasticache_snapshots(args: ResourceValidationArgs, report: ReportViolation) -> None:
    minimum = int(config_of(args, ELASTICACHE_SNAPSHOTS)["minimumDays"])
    days = args.props.get("snapshotRetentionLimit") or 0
    if float(days) < minimum:
        report(f"snapshotRetentionLimit is {days:g}; at least {minimum} required.", None)


# -- S3 (stack rules: the settings live in separate resources tied by their `bucket` input) --


def _attached(resources: Iterable[PolicyResource], types: Iterable[str]) -> dict[str, list[PolicyResource]]:
    """Bucket URN -> the resources of `types` whose `bucket` input comes from it."""
    wanted = set(types)
    attached: dict[str, list[PolicyResource]] = {}
    for resource in resources:
        if resource.resource_type in wanted:
            for bucket in resource.property_dependencies.get("bucket", []):
                attached.setdefault(bucket.urn, []).append(resource)
    return attached


def _buckets(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in BUCKETS]


S3_PUBLIC_ACCESS = Rule(
    "aws-s3-bucket-public-access-blocked",
    "Every S3 bucket must have a public access block with all four settings on.",
    Severity.CRITICAL,
    "Add aws.s3.BucketPublicAccessBlock(bucket=bucket.id) with block_public_acls, block_public_policy, "
    "ignore_public_acls and restrict_public_buckets all True.",
    Category.SECURITY,
)
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _s3_public_access(args: StackValidationArgs, report: ReportViolation) -> None:
    blocks = _attached(args.resources, [PUBLIC_ACCESS_BLOCK])
    for bucket in _buckets(args):
        attached = blocks.get(bucket.urn, [])
        if not attached:
            report(f"{bucket.name}: no BucketPublicAccessBlock.", bucket.urn)
        for block in attached:
            off = [flag for flag in PAB_FLAGS if not truthy(block.props.get(flag))]
            if off:
                report(f"{bucket.name}: public access block leaves {', '.join(off)} off.", bucket.urn)


S3_ENCRYPTED = Rule(
    "aws-s3-bucket-encrypted",
    "Every S3 bucket must have default server-side encryption.",
    Severity.HIGH,
    "Add aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' (or 'AES256').",
    Category.SECURITY,
)


def _s3_encrypted(args: StackValidationArgs, report: ReportViolation) -> None:
    configs = _attached(args.resources, ENCRYPTION_CONFIGS)
    for bucket in _buckets(args):
        algorithms = [
            ((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
            for config in configs.get(bucket.urn, [])
            for rule in config.props.get("rules") or []
        ]
        if not any(a in ("aws:kms", "aws:kms:dsse", "AES256") for a in algorithms):
            report(f"{bucket.name}: no default server-side encryption.", bucket.urn)


S3_VERSIONED = Rule(
    "aws-s3-bucket-versioned",
    "Every S3 bucket must have versioning enabled.",
    Severity.MEDIUM,
    "Add aws.s3.BucketVersioning with versioning_configuration status 'Enabled'.",
    Category.SECURITY,
)


def _s3_versioned(args: StackValidationArgs, report: ReportViolation) -> None:
    versionings = _attached(args.resources, VERSIONINGS)
    for bucket in _buckets(args):
        statuses = [
            (v.props.get("versioningConfiguration") or {}).get("status") for v in versionings.get(bucket.urn, [])
        ]
        if "Enabled" not in statuses:
            report(f"{bucket.name}: versioning is not enabled.", bucket.urn)


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


def _s3_backup_replicated(args: StackValidationArgs, report: ReportViolation) -> None:
    config = config_of(args, S3_BACKUP_REPLICATED)
    replications = _attached(args.resources, [REPLICATION])
    for bucket in _buckets(args):
        if (bucket.props.get("tags") or {}).get(config["tagKey"]) != config["tagValue"]:
            continue
        enabled = [
            rule
            for replication in replications.get(bucket.urn, [])
            for rule in replication.props.get("rules") or []
            if rule.get("status") == "Enabled"
        ]
        if not enabled:
            report(f"{bucket.name}: backup bucket has no enabled replication rule.", bucket.urn)


# -- Network, keys, disks, IAM ----------------------------------------------------------------

SG_DATA_PORTS = Rule(
    "aws-ec2-securitygroup-no-public-data-ports",
    "No security group may open SSH, PostgreSQL, Redis, Qdrant or all ports to 0.0.0.0/0 or ::/0.",
    Severity.CRITICAL,
    "Allow the port only from the VPC CIDR or from the security groups that use the store.",
    Category.SECURITY,
)


def _opens_data_port(protocol: Any, from_port: Any, to_port: Any) -> str | None:
    if str(protocol) in ("-1", "all"):
        return "all ports"
    low, high = int(float(from_port or 0)), int(float(to_port or 0))
    if low <= 0 and high >= 65535:
        return "all ports"
    opened = ranges_opened(low, high, SSH_AND_DATA_PORTS)
    if not opened:
        return None
    return ("port " if len(opened) == 1 and "-" not in opened[0] else "ports ") + ", ".join(opened)


def _sg_data_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    rules: list[tuple[Any, Any, Any, list[str]]] = []
    if args.resource_type == SECURITY_GROUP:
        for rule in props.get("ingress") or []:
            sources = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
            rules.append((rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"), sources))
    elif args.resource_type == SECURITY_GROUP_RULE:
        if props.get("type") == "ingress":
            sources = [*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])]
            rules.append((props.get("protocol"), props.get("fromPort"), props.get("toPort"), sources))
    else:
        sources = [s for s in (props.get("cidrIpv4"), props.get("cidrIpv6")) if s]
        rules.append((props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"), sources))
    for protocol, low, high, sources in rules:
        world = [s for s in sources if s in WORLD]
        opened = _opens_data_port(protocol, low, high) if world else None
        if opened:
            report(f"ingress from {', '.join(world)} to {opened}.", None)


KMS_ROTATION = Rule(
    "aws-kms-key-rotation",
    "Symmetric KMS keys must rotate automatically.",
    Severity.MEDIUM,
    "Set enable_key_rotation=True.",
    Category.SECURITY,
)


def _kms_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = args.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not truthy(args.props.get("enableKeyRotation")):
        report("enableKeyRotation is not true.", None)


EBS_ENCRYPTED = Rule(
    "aws-ebs-volume-encrypted",
    "EBS volumes, instance disks and launch template disks must be encrypted.",
    Severity.HIGH,
    "Set encrypted=True on the volume or block device (or enable EBS encryption by default).",
    Category.SECURITY,
)


def _ebs_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == EBS_VOLUME:
        disks = [("volume", props)]
    elif args.resource_type == EC2_INSTANCE:
        disks = [("root block device", props.get("rootBlockDevice") or {})]
        disks += [(f"ebs block device {d.get('deviceName')}", d) for d in props.get("ebsBlockDevices") or []]
    else:
        disks = [
            (f"block device {m.get('deviceName')}", m.get("ebs") or {})
            for m in props.get("blockDeviceMappings") or []
            if m.get("ebs") is not None
        ]
    for label, disk in disks:
        if not truthy(disk.get("encrypted")):
            report(f"{label} is not encrypted.", None)


IAM_NO_ADMIN = Rule(
    "aws-iam-policy-no-admin",
    "No IAM policy may allow every action on every resource.",
    Severity.CRITICAL,
    "Grant the specific actions on the specific resource ARNs the workload needs.",
    Category.SECURITY,
)


def _iam_no_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    document = args.props.get("policy")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            report("the policy document is not valid JSON.", None)
            return
    for statement in as_list((document or {}).get("Statement") or []):
        if statement.get("Effect") != "Allow":
            continue
        if "*" in as_list(statement.get("Action")) and "*" in as_list(statement.get("Resource")):
            report("a statement allows Action '*' on Resource '*'.", None)


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


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    tags = tags_of(args)
    missing = [t for t in config_of(args, REQUIRED_TAGS)["requiredTags"] if not tags.get(t)]
    if missing:
        report(f"missing tags {', '.join(missing)}.", None)


POLICIES = [
    resource_policy(RDS_ENCRYPTED, [RDS_INSTANCE, RDS_CLUSTER], _rds_encrypted),
    resource_policy(RDS_NOT_PUBLIC, [RDS_INSTANCE], _rds_not_public),
    resource_policy(RDS_BACKUPS, [RDS_INSTANCE, RDS_CLUSTER], _rds_backups),
    resource_policy(RDS_DELETION_PROTECTION, [RDS_INSTANCE, RDS_CLUSTER], _rds_deletion_protection),
    resource_policy(RDS_MULTI_AZ, [RDS_INSTANCE], _rds_multi_az),
    resource_policy(ELASTICACHE_ENCRYPTED, [ELASTICACHE], _elasticache_encrypted),
    resource_policy(ELASTICACHE_AUTH, [ELASTICACHE], _elasticache_auth),
    resource_policy(ELASTICACHE_SNAPSHOTS, [ELASTICACHE], _elasticache_snapshots),
    stack_policy(S3_PUBLIC_ACCESS, _s3_public_access),
    stack_policy(S3_ENCRYPTED, _s3_encrypted),
    stack_policy(S3_VERSIONED, _s3_versioned),
    stack_policy(S3_BACKUP_REPLICATED, _s3_backup_replicated),
    resource_policy(SG_DATA_PORTS, [SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE], _sg_data_ports),
    resource_policy(KMS_ROTATION, [KMS_KEY], _kms_rotation),
    resource_policy(EBS_ENCRYPTED, [EBS_VOLUME, EC2_INSTANCE, LAUNCH_TEMPLATE], _ebs_encrypted),
    resource_policy(IAM_NO_ADMIN, IAM_POLICIES, _iam_no_admin),
    resource_policy(REQUIRED_TAGS, TAGGABLE, _required_tags),
]
