"""IAM rules over every shape a grant can take, written with pulumi-aws's classes: identity policies,
role inline and managed policies, attachments, trust policies and resource policies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.policies.helpers import aws, messages, program, skipped

READ_BACKUPS = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::backups/*"}
EKS_TRUST = {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# Every way to hand one identity a policy document.
CARRIERS: dict[str, Callable[[str], None]] = {
    "policy": lambda doc: aws.iam.Policy("p", policy=doc),
    "role-policy": lambda doc: aws.iam.RolePolicy("p", role="r", policy=doc),
    "user-policy": lambda doc: aws.iam.UserPolicy("p", user="u", policy=doc),
    "group-policy": lambda doc: aws.iam.GroupPolicy("p", group="g", policy=doc),
    "role-inline": lambda doc: aws.iam.Role(
        "r", assume_role_policy=document(EKS_TRUST), inline_policies=[{"name": "inline", "policy": doc}]
    ),
}
# Every way to attach a managed policy.
ATTACHMENTS: dict[str, Callable[[str], None]] = {
    "role-attachment": lambda arn: aws.iam.RolePolicyAttachment("a", role="r", policy_arn=arn),
    "user-attachment": lambda arn: aws.iam.UserPolicyAttachment("a", user="u", policy_arn=arn),
    "group-attachment": lambda arn: aws.iam.GroupPolicyAttachment("a", group="g", policy_arn=arn),
    "policy-attachment": lambda arn: aws.iam.PolicyAttachment("a", roles=["r"], policy_arn=arn),
    "role-managed-arns": lambda arn: aws.iam.Role(
        "r", assume_role_policy=document(EKS_TRUST), managed_policy_arns=[arn]
    ),
    "role-exclusive": lambda arn: aws.iam.RolePolicyAttachmentsExclusive("a", role_name="r", policy_arns=[arn]),
}


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (allow("*"), "allows every action on every resource."),
        (allow(["*"], ["*"]), "allows every action on every resource."),
        (allow("*:*"), "allows every action on every resource."),
        (
            {"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "*"},
            "allows every action except s3:deletebucket on every resource.",
        ),
        ({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::audit/*"}, "allows every action on every"),
        (allow("*", "arn:aws:s3:::backups"), "allows every action on arn:aws:s3:::backups."),
    ],
    ids=["star", "star-lists", "star-colon-star", "not-action", "not-resource", "star-on-one-resource"],
)
def test_no_admin_whatever_carries_the_document(carrier: str, statement: dict[str, Any], expected: str) -> None:
    policy = "aws-iam-policy-no-admin"
    assert messages(policy, program(lambda: CARRIERS[carrier](document(READ_BACKUPS)))) == []
    found = messages(policy, program(lambda: CARRIERS[carrier](document(READ_BACKUPS, statement))))
    assert len(found) == 1
    assert expected in found[0]


def test_deny_statements_grant_nothing() -> None:
    deny = json.dumps({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}})
    assert messages("aws-iam-policy-no-admin", program(lambda: aws.iam.Policy("p", policy=deny))) == []


@pytest.mark.parametrize("attachment", ATTACHMENTS)
@pytest.mark.parametrize("partition", ["aws", "aws-us-gov"])
def test_administrator_access_is_admin_however_attached(attachment: str, partition: str) -> None:
    policy = "aws-iam-policy-no-admin"
    read_only = f"arn:{partition}:iam::aws:policy/ReadOnlyAccess"
    admin = f"arn:{partition}:iam::aws:policy/AdministratorAccess"
    assert messages(policy, program(lambda: ATTACHMENTS[attachment](read_only))) == []
    assert messages(policy, program(lambda: ATTACHMENTS[attachment](admin))) == [f"attaches {admin}."]


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize(
    ("statement", "granted"),
    [
        (allow("iam:*"), "iam:AttachRolePolicy"),
        (allow("iam:Put*"), "iam:PutGroupPolicy, iam:PutRolePolicy, iam:PutUserPolicy"),
        (allow(["iam:passrole"]), "iam:PassRole"),
        (allow("sts:AssumeRole"), "sts:AssumeRole"),
    ],
    ids=["iam-star", "iam-put", "pass-role-lowercase", "assume-role"],
)
def test_privilege_escalation_on_every_resource(carrier: str, statement: dict[str, Any], granted: str) -> None:
    policy = "aws-iam-policy-no-privilege-escalation"
    scoped = allow("iam:PassRole", "arn:aws:iam::123456789012:role/eks-nodes")
    assert messages(policy, program(lambda: CARRIERS[carrier](document(READ_BACKUPS, scoped)))) == []
    found = messages(policy, program(lambda: CARRIERS[carrier](document(statement))))
    assert len(found) == 1
    assert granted in found[0]


def test_iam_full_access_is_escalation() -> None:
    policy = "aws-iam-policy-no-privilege-escalation"
    arn = "arn:aws:iam::aws:policy/IAMFullAccess"
    assert messages(policy, program(lambda: ATTACHMENTS["role-attachment"](arn))) == [f"attaches {arn}."]


def test_a_document_not_known_during_preview_is_reported_not_passed() -> None:
    def build() -> None:
        bucket = aws.s3.Bucket("b")
        aws.iam.Policy("p", policy=bucket.arn.apply(lambda arn: document(allow("s3:GetObject", f"{arn}/*"))))

    policy = "aws-iam-policy-no-admin"
    run = program(build, first_preview=True)
    assert messages(policy, run) == []
    assert skipped(policy, run) == ["p: policy: the document can't be known during preview"]


def test_an_unreadable_document_fails() -> None:
    found = messages("aws-iam-policy-no-admin", program(lambda: aws.iam.Policy("p", policy="{not json")))
    assert found == ["policy: the policy document is not JSON."]


@pytest.mark.parametrize(
    ("principal", "condition", "expected"),
    [
        ({"Service": "eks.amazonaws.com"}, None, []),
        ({"AWS": "arn:aws:iam::123456789012:root"}, None, []),
        ("*", None, ["assumeRolePolicy statement 0 lets any AWS principal assume the role."]),
        ({"AWS": "*"}, None, ["assumeRolePolicy statement 0 lets any AWS principal assume the role."]),
        ({"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}, []),
        (
            {"AWS": "*"},
            {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}},
            ["assumeRolePolicy statement 0 lets any AWS principal assume the role."],
        ),
    ],
    ids=["service", "account", "star", "aws-star", "org-condition", "negated-condition"],
)
def test_role_trust(principal: Any, condition: dict[str, Any] | None, expected: list[str]) -> None:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    run = program(lambda: aws.iam.Role("r", assume_role_policy=document(statement)))
    assert messages("aws-iam-role-no-public-trust", run) == expected


RESOURCE_POLICIES: dict[str, Callable[[str], None]] = {
    "bucket-policy": lambda doc: aws.s3.BucketPolicy("bp", bucket="b", policy=doc),
    "bucket-inline": lambda doc: aws.s3.Bucket("b", policy=doc),
    "kms-key": lambda doc: aws.kms.Key("k", enable_key_rotation=True, policy=doc),
    "kms-key-policy": lambda doc: aws.kms.KeyPolicy("kp", key_id="k", policy=doc),
    "sqs-queue": lambda doc: aws.sqs.Queue("q", policy=doc),
    "sqs-queue-policy": lambda doc: aws.sqs.QueuePolicy("qp", queue_url="https://sqs/q", policy=doc),
    "sns-topic-policy": lambda doc: aws.sns.TopicPolicy("tp", arn="arn:aws:sns:us-east-1:1:t", policy=doc),
    "ecr-repository-policy": lambda doc: aws.ecr.RepositoryPolicy("rp", repository="r", policy=doc),
    "secret-policy": lambda doc: aws.secretsmanager.SecretPolicy("sp", secret_arn="arn:s", policy=doc),
}


@pytest.mark.parametrize("carrier", RESOURCE_POLICIES)
def test_resource_policies_are_not_public(carrier: str) -> None:
    policy = "aws-iam-resource-policy-not-public"
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }
    deny_all = {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}
    assert messages(policy, program(lambda: RESOURCE_POLICIES[carrier](document(service, deny_all)))) == []
    public = {"Sid": "Public", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "*"}
    assert messages(policy, program(lambda: RESOURCE_POLICIES[carrier](document(service, public)))) == [
        "policy statement Public allows anyone."
    ]
    private_network = {**public, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    assert messages(policy, program(lambda: RESOURCE_POLICIES[carrier](document(private_network)))) == []
    internet = {**public, "Condition": {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}}
    assert len(messages(policy, program(lambda: RESOURCE_POLICIES[carrier](document(internet))))) == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"principal": "events.amazonaws.com", "source_arn": "arn:aws:events:us-east-1:1:rule/r"}, []),
        ({"principal": "123456789012"}, []),
        ({"principal": "*"}, ["the permission lets anyone invoke the function."]),
        (
            {"principal": "s3.amazonaws.com"},
            ["the permission lets s3.amazonaws.com invoke the function for any account (no sourceArn)."],
        ),
    ],
    ids=["service-with-source", "account", "anyone", "service-without-source"],
)
def test_lambda_permissions(args: dict[str, Any], expected: list[str]) -> None:
    run = program(lambda: aws.lambda_.Permission("perm", action="lambda:InvokeFunction", function="f", **args))
    assert messages("aws-iam-resource-policy-not-public", run) == expected
