"""`BackupBucket`: the S3 bucket every store backs up to, and its replica in the DR region.

Both buckets: KMS encryption with a rotating key, versioning, every public-access block on,
bucket-owner-enforced ownership, TLS-only access, lifecycle rules from `retentionDays`.
The replica is fed by S3 replication with Replication Time Control (99.99 % of objects within
15 minutes); delete markers are not replicated, so a deletion in the primary cannot empty the DR copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.backup.hardened_bucket import HardenedBucket, HardenedBucketArgs, hardened_bucket
from settings.backup import BackupSettings

# Where each store writes inside the bucket.
POSTGRES_PREFIX = "postgres/"
QDRANT_PREFIX = "qdrant/"
REDIS_PREFIX = "redis/"
# What the Postgres restore check saw on the primary (marker, row counts): the DR region's check
# of the replicated copy verifies against it.
POSTGRES_FIGURES_PREFIX = "postgres-figures/"
# Barman prunes its own base backups and WAL by `retentionPolicy`; expiring them by age could
# delete the base backup an in-window point-in-time recovery still starts from.
AGE_EXPIRED_PREFIXES = (QDRANT_PREFIX, REDIS_PREFIX, POSTGRES_FIGURES_PREFIX)
REPLICATION_MINUTES = 15  # the only value S3 Replication Time Control accepts
REPLICATION_RULE = "to-dr-region"


@dataclass(frozen=True)
class BackupBucketArgs:
    """Inputs of `BackupBucket`."""

    backups: BackupSettings
    """Bucket names, regions and retention (`sophia:backups`)."""
    tags: Mapping[str, str]
    """Cost tags; `purpose` is added here."""
    provider: aws.Provider
    """Provider for `backups.s3Region`."""
    replica_provider: aws.Provider | None
    """Provider for `backups.replicaRegion`; None when the stack has no replica."""
    protect: bool
    """Protect buckets and keys: true in prod."""
    alarm_topic_arns: Sequence[pulumi.Input[str]] = ()
    """SNS topics in `s3Region` and `replicaRegion` (that order) the replication alarms notify."""


class BackupBucket(pulumi.ComponentResource):
    """`bucket_name` in `s3Region`; `replica_bucket_name` (or None) in `replicaRegion`."""

    bucket_name: str
    replica_bucket_name: str | None

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:backup:BackupBucket", name, None, opts)
        settings = args.backups
        self.bucket_name = settings.s3_bucket
        self.replica_bucket_name = settings.replica_bucket
        rules = lifecycle_rules(settings.retention_days)
        source = hardened_bucket(
            self,
            HardenedBucketArgs(
                name, settings.s3_bucket, {**args.tags, "purpose": "backup"}, args.provider, args.protect, rules
            ),
        )
        self.bucket, self.key = source.bucket, source.key
        if args.replica_provider is not None and settings.replica_bucket is not None:
            replica = hardened_bucket(
                self,
                HardenedBucketArgs(
                    f"{name}-replica",
                    settings.replica_bucket,
                    {**args.tags, "purpose": "backup-replica"},
                    args.replica_provider,
                    args.protect,
                    rules,
                ),
            )
            self._replication(name, args, source, replica)
            if args.alarm_topic_arns:
                self._replication_alarms(name, args)
        self.register_outputs({"bucket": self.bucket_name, "replicaBucket": self.replica_bucket_name})

    def _replication(self, name: str, args: BackupBucketArgs, source: HardenedBucket, replica: HardenedBucket) -> None:
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        role = aws.iam.Role(
            f"{name}-replication-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            tags=dict(args.tags),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-replication-policy",
            role=role.id,
            # Built from names, not outputs, so preview and the policy pack can read it.
            policy=replication_policy(args.backups),
            opts=child,
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=self.bucket.id,
            role=role.arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id=REPLICATION_RULE,
                    status="Enabled",
                    filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                    delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                        status="Disabled"
                    ),
                    source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                        sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                            status="Enabled"
                        )
                    ),
                    destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                        bucket=replica.bucket.arn,
                        storage_class="STANDARD",
                        encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                            replica_kms_key_id=replica.key.arn
                        ),
                        replication_time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                            status="Enabled",
                            time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(
                                minutes=REPLICATION_MINUTES
                            ),
                        ),
                        metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                            status="Enabled",
                            event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                                minutes=REPLICATION_MINUTES
                            ),
                        ),
                    ),
                )
            ],
            # "Both source and destination buckets must have versioning enabled" (S3 User Guide,
            # replication requirements); the rule names only the source bucket, so say it.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[source.versioning, replica.versioning])
            ),
        )

    def _replication_alarms(self, name: str, args: BackupBucketArgs) -> None:
        """Alarms on failed and late replication (the rule's S3 Replication metrics, which RTC turns
        on). AWS documents the destination region for bytes pending; for failures and latency the
        region is not stated in what could be checked here, so each alarm exists in both regions and
        the one without data stays quiet (missing data is ignored, as the S3 User Guide advises)."""
        assert args.replica_provider is not None
        providers = (args.provider, args.replica_provider)
        for (role, provider), topic in zip(
            (("source", providers[0]), ("replica", providers[1])), args.alarm_topic_arns, strict=True
        ):
            for alarm, (metric, statistic, threshold, description) in replication_alarms(args.backups).items():
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{alarm}-{role}",
                    alarm_description=description,
                    namespace="AWS/S3",
                    metric_name=metric,
                    dimensions=replication_dimensions(args.backups),
                    statistic=statistic,
                    period=300,
                    evaluation_periods=1,
                    comparison_operator="GreaterThanThreshold",
                    threshold=threshold,
                    treat_missing_data="ignore",
                    alarm_actions=[topic],
                    ok_actions=[topic],
                    tags=dict(args.tags),
                    opts=pulumi.ResourceOptions(parent=self, provider=provider),
                )


def replication_dimensions(backups: BackupSettings) -> dict[str, str]:
    """The S3 Replication metrics' dimensions (S3 User Guide, metrics-dimensions: "S3 Replication
    dimensions in CloudWatch")."""
    return {
        "SourceBucket": backups.s3_bucket,
        "DestinationBucket": str(backups.replica_bucket),
        "RuleId": REPLICATION_RULE,
    }


def replication_alarms(backups: BackupSettings) -> dict[str, tuple[str, str, float, str]]:
    """alarm -> (metric, statistic, threshold, description): any failed operation in five minutes
    (OperationsFailedReplication, statistic Sum), or the replica more than RTC's 15 minutes behind
    (ReplicationLatency, statistic Maximum)."""
    pair = f"s3://{backups.s3_bucket} -> s3://{backups.replica_bucket}"
    return {
        "replication-failed": (
            "OperationsFailedReplication",
            "Sum",
            0.0,
            f"Backups failed to replicate to the DR region ({pair}): the DR copy is incomplete",
        ),
        "replication-late": (
            "ReplicationLatency",
            "Maximum",
            float(REPLICATION_MINUTES * 60),
            f"Backups reach the DR region more than {REPLICATION_MINUTES} minutes late ({pair})",
        ),
    }


def lifecycle_rules(retention_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Snapshots expire after the retention; old object versions a little later; stray uploads after a week."""
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=f"expire-{prefix.rstrip('/')}",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=retention_days),
        )
        for prefix in AGE_EXPIRED_PREFIXES
    ]
    rules.append(
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="noncurrent-versions-and-uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=retention_days
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
    )
    return rules


def encryption_contexts(bucket_arn: str) -> list[str]:
    """The `aws:s3:arn` KMS sees for objects of a bucket: the bucket ARN itself when the bucket uses
    S3 Bucket Keys ("S3 Bucket Keys use the bucket ARN as encryption context", S3 User Guide,
    "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys"), which both buckets do; the object
    ARN for objects written without one."""
    return [bucket_arn, f"{bucket_arn}/*"]


def replication_policy(backups: BackupSettings) -> str:
    """What S3 replication needs: these two buckets, and KMS only as S3 uses it for them."""
    source_arn = f"arn:aws:s3:::{backups.s3_bucket}"
    replica_arn = f"arn:aws:s3:::{backups.replica_bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": source_arn,
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                    ],
                    "Resource": f"{source_arn}/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
                    "Resource": f"{replica_arn}/*",
                },
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{backups.s3_region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": encryption_contexts(source_arn)},
                    },
                },
                {
                    "Effect": "Allow",
                    # Decrypt too: "the call to kms:Decrypt verifies the integrity of the S3 Bucket
                    # Key before using it" (S3 User Guide, replicating encrypted objects).
                    "Action": ["kms:Encrypt", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{backups.replica_region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": encryption_contexts(replica_arn)},
                    },
                },
            ],
        }
    )
