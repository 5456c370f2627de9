"""The DR region's data key (pure policy, plus one helper that creates it).

It encrypts ElastiCache at rest, EKS Secrets, the nodes' root volumes (through their launch
template) and the PersistentVolumes (through the StorageClass's `kmsKeyId`). Nothing is made an
account default: `aws.ebs.EncryptionByDefault` and `aws.ebs.DefaultKmsKey` change every volume of
the account in the region, and destroying them flips the setting back for everyone.

Who must be admitted, and why:
- the account (`:root`, `kms:*`): key administration, and IAM policies may grant use of the key;
  that is how the EBS CSI driver's Pod Identity role gets its rights;
- the EC2 Auto Scaling service-linked role: managed node groups are Auto Scaling groups, and the
  SLR launches the nodes. "The predefined permissions [...] do not include access to your
  customer managed keys": it needs "use" and "grants for AWS resources" in the key policy itself
  (EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted volumes").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.kms import account_administers

AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"
AUTOSCALING_ROLE_PATH = f"role/aws-service-role/{AUTOSCALING_SERVICE}/AWSServiceRoleForAutoScaling"
KEY_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def autoscaling_role_arn(account: str) -> str:
    """The account's EC2 Auto Scaling service-linked role (its name and path are fixed by AWS)."""
    return f"arn:aws:iam::{account}:{AUTOSCALING_ROLE_PATH}"


def data_key_policy(account: str) -> str:
    """Account administration, and what the Auto Scaling SLR needs to launch encrypted node volumes."""
    autoscaling = {"AWS": autoscaling_role_arn(account)}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers(account),
                {
                    "Sid": "AutoScalingUsesKey",
                    "Effect": "Allow",
                    "Principal": autoscaling,
                    "Action": KEY_USE_ACTIONS,
                    "Resource": "*",
                },
                {
                    "Sid": "AutoScalingAttachesVolumes",
                    "Effect": "Allow",
                    "Principal": autoscaling,
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
            ],
        }
    )


@dataclass(frozen=True)
class DataKeyArgs:
    """What the data key needs."""

    name: str
    account: str
    tags: Mapping[str, str]
    provider: aws.Provider


def data_key_alias(name: str) -> str:
    """The key's alias: IAM policies name the key through it (`kms:ResourceAliases`), so they are
    known at preview, when the key's ARN is not."""
    return f"alias/{name}-data"


def data_key(owner: pulumi.Resource, args: DataKeyArgs) -> tuple[aws.kms.Key, aws.kms.Alias]:
    """The key, after the Auto Scaling SLR it names: KMS refuses a policy naming a principal that
    does not exist yet ("MalformedPolicyDocumentException: ... invalid principals"), which is the
    case in an account that has never had an Auto Scaling group.

    The SLR is account-wide and shared with every Auto Scaling group of the account: it is kept when
    the stack is destroyed (`retain_on_delete`). Where it already exists, import it once before the
    first `pulumi up -s dr` (docs/dr.md, "Bring-up")."""
    child = pulumi.ResourceOptions(parent=owner, provider=args.provider)
    role = aws.iam.ServiceLinkedRole(
        f"{args.name}-autoscaling-role",
        aws_service_name=AUTOSCALING_SERVICE,
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
    )
    key = aws.kms.Key(
        f"{args.name}-data-key",
        description="Encrypts the DR region's data stores",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=data_key_policy(args.account),
        tags=dict(args.tags),
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True, depends_on=[role])),
    )
    alias = aws.kms.Alias(
        f"{args.name}-data-key-alias", name=data_key_alias(args.name), target_key_id=key.key_id, opts=child
    )
    return key, alias
