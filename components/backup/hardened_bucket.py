"""A hardened S3 bucket (pure helper: resources, no component of its own)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class HardenedBucketArgs:
    """What differs between the project's buckets."""

    name: str
    """Pulumi name prefix of the bucket's resources."""
    bucket_name: str
    """The S3 bucket name (global)."""
    tags: Mapping[str, str]
    provider: aws.Provider
    protect: bool
    """Protect the bucket and its key."""
    lifecycle: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgs]
    extra_statements: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    """Bucket-policy statements besides the TLS-only one (e.g. CloudTrail's delivery)."""
    key_policy: pulumi.Input[str] | None = None
    """KMS key policy, when AWS services (CloudTrail, log delivery) must encrypt with the key."""


class HardenedBucket(NamedTuple):
    """The resources others must wait for: replication needs `versioning` on both ends, and
    services that write into the bucket (CloudTrail, log delivery) need its `policy` first."""

    bucket: aws.s3.Bucket
    key: aws.kms.Key
    versioning: aws.s3.BucketVersioning
    policy: aws.s3.BucketPolicy


def hardened_bucket(owner: pulumi.Resource, args: HardenedBucketArgs) -> HardenedBucket:
    """Bucket and KMS key (rotating), owner-enforced, public access blocked, versioned,
    SSE-KMS by default, lifecycle rules, and a policy that refuses plain HTTP; children of `owner`."""
    name, bucket_name, tags, provider = args.name, args.bucket_name, dict(args.tags), args.provider
    child = pulumi.ResourceOptions(parent=owner, provider=provider)
    keep = pulumi.ResourceOptions(parent=owner, provider=provider, protect=args.protect)
    key = aws.kms.Key(
        f"{name}-key",
        description=f"Encrypts s3://{bucket_name}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=args.key_policy,
        tags=tags,
        opts=keep,
    )
    bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, tags=tags, opts=keep)
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn
                ),
                bucket_key_enabled=True,  # one KMS call per object batch, not per request
            )
        ],
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=list(args.lifecycle),
        opts=pulumi.ResourceOptions(parent=owner, provider=provider, depends_on=[versioning]),
    )
    policy = aws.s3.BucketPolicy(
        f"{name}-tls-only",
        bucket=bucket.id,
        policy=bucket_policy(bucket_name, args.extra_statements),
        opts=child,
    )
    return HardenedBucket(bucket, key, versioning, policy)


def bucket_policy(bucket_name: str, extra_statements: Sequence[Mapping[str, Any]] = ()) -> str:
    """Refuses plain HTTP, plus `extra_statements`; built from the name so preview can read it."""
    arn = f"arn:aws:s3:::{bucket_name}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyPlainHttp",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                *extra_statements,
            ],
        }
    )
