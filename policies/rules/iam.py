"""IAM rules over every shape a permission can take (`policies.model.iam`): identity policies, a
role's inline and managed policies, attachment resources, trust policies and resource policies.

A document that is not known yet (it embeds an output of a resource being created) cannot be judged
during preview; the other documents of the same resource still are. During `pulumi up` the
documents are known when these resource rules run, before the resource is created.
"""

from __future__ import annotations

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule
from policies.model.iam import (
    ATTACHMENT_TYPES,
    EXCLUSIVE_ATTACHMENT_TYPES,
    IDENTITY_POLICY_TYPES,
    LAMBDA_PERMISSION,
    RESOURCE_POLICY_TYPES,
    ROLE,
    Document,
    Statement,
    managed_policy_name,
)
from policies.model.subject import Subject
from policies.model.values import Unknown, need, read, read_key, text

PERMISSION_TYPES = (*IDENTITY_POLICY_TYPES, ROLE, *ATTACHMENT_TYPES, *EXCLUSIVE_ATTACHMENT_TYPES)
ADMIN_MANAGED_POLICIES = ("AdministratorAccess",)
ESCALATION_MANAGED_POLICIES = ("IAMFullAccess",)
# Actions that let a principal grant itself more (CKV_AWS_286's list and the iam:* family).
ESCALATION_ACTIONS = (
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "sts:AssumeRole",
)


def _judge(documents: tuple[Document, ...], ctx: Ctx) -> list[Statement]:
    """The known statements; each document that is unknown or unreadable is reported on its own."""
    found: list[Statement] = []
    for document in documents:
        if isinstance(document.statements, Unknown):
            ctx.undetermined(f"{document.where}: the document can't be known during preview")
        elif document.error:
            ctx.violation(f"{document.error}.")
        else:
            found.extend(document.statements)
    return found


def _unknown_arns(arns: tuple[str | Unknown, ...], ctx: Ctx) -> list[str]:
    for arn in arns:
        if isinstance(arn, Unknown):
            ctx.undetermined(f"a managed policy ARN ({arn.where}) can't be known during preview")
    return [a for a in arns if isinstance(a, str)]


NO_ADMIN = Rule(
    "aws-iam-policy-no-admin",
    "No identity may be granted every action: no Action '*' (on any resource), no Allow with NotAction on '*', "
    "no AdministratorAccess.",
    Severity.CRITICAL,
    "Grant the specific actions on the specific resource ARNs the workload needs; never attach AdministratorAccess.",
    Category.SECURITY,
)


def _no_admin(subject: Subject, ctx: Ctx) -> None:
    for statement in _judge(subject.iam.permissions, ctx):
        if not statement.allow:
            continue
        if statement.every_action:
            on = "every resource" if statement.every_resource else ", ".join(statement.resources or ())
            ctx.violation(f"{statement.where} allows every action on {on}.")
        elif statement.not_actions is not None and statement.every_resource:
            ctx.violation(
                f"{statement.where} allows every action except {', '.join(statement.not_actions)} on every resource."
            )
    for arn in _unknown_arns(subject.iam.managed_arns, ctx):
        if managed_policy_name(arn) in ADMIN_MANAGED_POLICIES:
            ctx.violation(f"attaches {arn}.")


NO_ESCALATION = Rule(
    "aws-iam-policy-no-privilege-escalation",
    "No identity may hold, on every resource, an action that grants it more (iam:*, attach/put policies, "
    "PassRole, AssumeRole, access keys), nor IAMFullAccess.",
    Severity.HIGH,
    "Scope iam:PassRole and sts:AssumeRole to the role ARNs needed; leave policy management to the deploy role.",
    Category.SECURITY,
)


def _no_escalation(subject: Subject, ctx: Ctx) -> None:
    for statement in _judge(subject.iam.permissions, ctx):
        if not statement.every_resource or statement.every_action or statement.not_actions is not None:
            continue  # admin grants are aws-iam-policy-no-admin's
        granted = [action for action in ESCALATION_ACTIONS if statement.allows(action)]
        if granted:
            ctx.violation(f"{statement.where} allows {', '.join(granted)} on every resource.")
    for arn in _unknown_arns(subject.iam.managed_arns, ctx):
        if managed_policy_name(arn) in ESCALATION_MANAGED_POLICIES:
            ctx.violation(f"attaches {arn}.")


PUBLIC_TRUST = Rule(
    "aws-iam-role-no-public-trust",
    "No role may be assumable by any AWS principal ('*') unless a condition ties the caller to an account, "
    "organization or source.",
    Severity.HIGH,
    "Name the service or account principal in assume_role_policy, or add an aws:PrincipalOrgID / "
    "aws:SourceAccount condition.",
    Category.SECURITY,
)


def _public_trust(subject: Subject, ctx: Ctx) -> None:
    for statement in _judge(subject.iam.trust, ctx):
        if statement.allow and statement.public_principal and not statement.restricted_by_condition:
            ctx.violation(f"{statement.where} lets any AWS principal assume the role.")


PUBLIC_RESOURCE_POLICY = Rule(
    "aws-iam-resource-policy-not-public",
    "No resource policy (bucket, key, queue, topic, repository, secret, function permission) may allow anyone "
    "('*') unless a condition ties the caller to an account, organization, source or private network.",
    Severity.CRITICAL,
    "Name the principals (accounts, roles, services) and, for a service principal, its aws:SourceArn or "
    "aws:SourceAccount.",
    Category.SECURITY,
)


def _public_resource_policy(subject: Subject, ctx: Ctx) -> None:
    if subject.is_lambda_permission:
        principal = need(read(lambda: text(subject.get("principal"))))
        restricted = any(read_key(subject.props, k) for k in ("sourceArn", "sourceAccount", "principalOrgId"))
        if principal == "*" and not restricted:
            ctx.violation("the permission lets anyone invoke the function.")
        elif principal and principal.endswith(".amazonaws.com") and not restricted:
            ctx.violation(f"the permission lets {principal} invoke the function for any account (no sourceArn).")
        return
    for statement in _judge(subject.iam.resource_policies, ctx):
        if statement.allow and statement.public_principal and not statement.restricted_by_condition:
            ctx.violation(f"{statement.where} allows anyone.")


POLICIES = [
    NO_ADMIN.resource(PERMISSION_TYPES, _no_admin),
    NO_ESCALATION.resource(PERMISSION_TYPES, _no_escalation),
    PUBLIC_TRUST.resource([ROLE], _public_trust),
    PUBLIC_RESOURCE_POLICY.resource([*RESOURCE_POLICY_TYPES, LAMBDA_PERMISSION], _public_resource_policy),
]
