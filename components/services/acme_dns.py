"""`AcmeDnsIdentity`: the AWS identity cert-manager answers ACME DNS-01 challenges with, for the
gateway's certificate: an IAM user that may change records in one Route 53 hosted zone only (the
policy cert-manager documents for its Route 53 solver), and its access key, a Pulumi secret.

DNS-01 rather than HTTP-01 in both regions: the failover name (`api.sophia.ai`) answers with prod
while prod is up, so DR could never pass an HTTP-01 challenge for it; and cert-manager's Gateway
API support, which HTTP-01 through a Gateway needs, would have cert-manager wait on Envoy
Gateway's CRDs. Rotating the key: `pulumi up --replace` on the access key (docs/runbooks/key-rotation.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AcmeDnsIdentityArgs:
    """Inputs of `AcmeDnsIdentity`."""

    hosted_zone_id: str
    tags: Mapping[str, str]
    provider: aws.Provider


def dns01_policy(hosted_zone_id: str) -> str:
    """cert-manager's Route 53 solver policy (cert-manager.io docs, "Route53"), on one zone."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
                {
                    "Effect": "Allow",
                    "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                    "Resource": f"arn:aws:route53:::hostedzone/{hosted_zone_id}",
                },
                {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
            ],
        }
    )


class AcmeDnsIdentity(pulumi.ComponentResource):
    """`access_key_id` and `secret_access_key` (a secret) for cert-manager's Route 53 solver."""

    def __init__(self, name: str, args: AcmeDnsIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:services:AcmeDnsIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        user = aws.iam.User(f"{name}-user", path="/sophia/", tags=dict(args.tags), opts=child)
        aws.iam.UserPolicy(f"{name}-policy", user=user.name, policy=dns01_policy(args.hosted_zone_id), opts=child)
        key = aws.iam.AccessKey(f"{name}-key", user=user.name, opts=child)
        self.access_key_id: pulumi.Output[str] = key.id
        self.secret_access_key: pulumi.Output[str] = pulumi.Output.secret(key.secret)
        self.register_outputs({"user": user.name})
