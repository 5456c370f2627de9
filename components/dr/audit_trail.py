"""`AuditTrail`: the DR region's audit bucket, a multi-region CloudTrail trail, and the place
VPC flow logs land. The bucket is hardened like every other; its key lets CloudTrail and the
log-delivery service encrypt with it, for this account only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.backup.hardened_bucket import HardenedBucketArgs, hardened_bucket
from components.kms import account_administers

CLOUDTRAIL_PREFIX = "cloudtrail"
FLOW_LOG_PREFIX = "flow-logs"


@dataclass(frozen=True)
class AuditTrailArgs:
    """Inputs of `AuditTrail`."""

    bucket_name: str
    tags: Mapping[str, str]
    provider: aws.Provider
    retention_days: int
    """How long audit records are kept."""


def audit_bucket_statements(bucket_name: str, account: str) -> list[dict[str, object]]:
    """CloudTrail and VPC flow-log delivery may write under their prefixes, for this account only."""
    arn = f"arn:aws:s3:::{bucket_name}"
    same_account = {"StringEquals": {"aws:SourceAccount": account}}
    services = ["cloudtrail.amazonaws.com", "delivery.logs.amazonaws.com"]
    return [
        {
            "Sid": "LogServicesCheckAcl",
            "Effect": "Allow",
            "Principal": {"Service": services},
            "Action": "s3:GetBucketAcl",
            "Resource": arn,
            "Condition": same_account,
        },
        {
            "Sid": "LogServicesWrite",
            "Effect": "Allow",
            "Principal": {"Service": services},
            "Action": "s3:PutObject",
            "Resource": [
                f"{arn}/{CLOUDTRAIL_PREFIX}/AWSLogs/{account}/*",
                f"{arn}/{FLOW_LOG_PREFIX}/AWSLogs/{account}/*",
            ],
            "Condition": same_account,
        },
    ]


def audit_key_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers(account),
                {
                    "Sid": "LogServicesEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudtrail.amazonaws.com", "delivery.logs.amazonaws.com"]},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt", "kms:DescribeKey"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        }
    )


class AuditTrail(pulumi.ComponentResource):
    """`bucket_arn` receives CloudTrail under `cloudtrail/` and flow logs under `flow-logs/`."""

    bucket_arn: str
    flow_log_destination: str

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:AuditTrail", name, None, opts)
        # The account id is only known from the credentials: an invoke, not a setting.
        account = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=args.provider)).account_id
        self.bucket_arn = f"arn:aws:s3:::{args.bucket_name}"
        self.flow_log_destination = f"{self.bucket_arn}/{FLOW_LOG_PREFIX}/"
        expire = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-audit-records",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.retention_days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=args.retention_days
            ),
        )
        audit = hardened_bucket(
            self,
            HardenedBucketArgs(
                f"{name}-audit",
                args.bucket_name,
                {**args.tags, "purpose": "audit"},
                args.provider,
                True,  # audit records are kept whatever the environment
                [expire],
                extra_statements=audit_bucket_statements(args.bucket_name, account),
                key_policy=audit_key_policy(account),
            ),
        )
        self.bucket_policy = audit.policy
        """Log delivery may write only once this exists: the flow logs wait for it too."""
        aws.cloudtrail.Trail(
            f"{name}-trail",
            name=f"{name}-trail",
            s3_bucket_name=audit.bucket.id,
            s3_key_prefix=CLOUDTRAIL_PREFIX,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            kms_key_id=audit.key.arn,
            tags=dict(args.tags),
            # CloudTrail checks the bucket policy when the trail is created
            # (InsufficientS3BucketPolicyException when the two race; terraform-provider-aws#26392).
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[audit.policy]),
        )
        self.register_outputs({"bucket": args.bucket_name})
