"""IAM in every shape it reaches a resource: statements of identity and resource policies (documents
given as JSON text or objects, on policies, role inline policies, bucket, key, queue, topic,
repository and secret policies) and managed-policy attachments (the attachment resources, a role's
`managedPolicyArns`, the exclusive attachment resources).

A `Statement` answers the questions the rules ask: which actions it allows (`Action` and
`NotAction` patterns, case-insensitive, `*` and `?` wildcards), whether on every resource (`*` or
`NotResource`), and whether to anyone (`Principal: "*"` or `{"AWS": "*"}`) without a condition that
ties the caller to an account, organization, source or network.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from policies.model.cidr import CidrSet
from policies.model.values import Unknown, items, json_document, mapping, one_or_many, read, read_key, text

IDENTITY_POLICY_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    }
)
EXCLUSIVE_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
        "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive",
    }
)
# Resource policies: the property holding the document.
RESOURCE_POLICY_TYPES: Mapping[str, str] = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:s3/bucket:Bucket": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sqs/queue:Queue": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
}
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
IAM_TYPES = IDENTITY_POLICY_TYPES | ATTACHMENT_TYPES | EXCLUSIVE_ATTACHMENT_TYPES | {ROLE}

# Condition keys that tie a public principal to an account, organization, source or network.
_RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalArn",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "kms:CallerAccount",
    )
)
_POSITIVE_OPERATORS = ("stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike")


@dataclass(frozen=True)
class Statement:
    where: str
    effect: str
    actions: tuple[str, ...] | None
    """Lower-cased `Action` patterns; None when the statement uses `NotAction`."""
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principals: tuple[str, ...]
    """`*`, or `<kind>:<value>` (e.g. `aws:*`, `service:eks.amazonaws.com`); empty for identity policies."""
    conditions: Mapping[str, Any]

    @property
    def allow(self) -> bool:
        return self.effect.lower() == "allow"

    def allows(self, action: str) -> bool:
        """The statement is an Allow that grants `action` (e.g. `iam:PassRole`)."""
        if not self.allow:
            return False
        action = action.lower()
        if self.actions is not None:
            return any(fnmatch.fnmatchcase(action, pattern) for pattern in self.actions)
        return not any(fnmatch.fnmatchcase(action, pattern) for pattern in self.not_actions or ())

    @property
    def every_action(self) -> bool:
        return self.actions is not None and any(a in ("*", "*:*") for a in self.actions)

    @property
    def every_resource(self) -> bool:
        return self.not_resources is not None or "*" in (self.resources or ())

    @property
    def public_principal(self) -> bool:
        return any(p in ("*", "aws:*") for p in self.principals)

    @property
    def restricted_by_condition(self) -> bool:
        """A condition ties the caller to an account, organization, source ARN or private network."""
        for operator, clauses in self.conditions.items():
            name = str(operator).lower().split(":")[-1]
            for raw_key, values in mapping(clauses).items():
                key = str(raw_key).lower()
                wanted = [str(v) for v in one_or_many(values)]
                if key == "aws:sourceip" and name in ("ipaddress",):
                    if wanted and not CidrSet.of(wanted).is_public():
                        return True
                elif key in _RESTRICTING_KEYS and name in _POSITIVE_OPERATORS and wanted and "*" not in wanted:
                    return True
        return False


def _principals(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return ("*",) if value == "*" else (f"aws:{value}".lower(),)
    found: list[str] = []
    for kind, who in mapping(value).items():
        found.extend(f"{str(kind).lower()}:{str(w).lower()}" for w in one_or_many(who))
    return tuple(found)


def _patterns(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v).lower() for v in one_or_many(value))


def statements(document: Any, where: str) -> tuple[Statement, ...]:
    """The statements of one policy document; raises ValueError when it is not a policy document."""
    document = json_document(document)
    if not isinstance(document, Mapping):
        raise ValueError(f"{where}: the policy document is not JSON")
    found = []
    for index, raw in enumerate(one_or_many(document.get("Statement"))):
        statement = mapping(raw)
        found.append(
            Statement(
                where=f"{where} statement {statement.get('Sid') or index}",
                effect=str(statement.get("Effect", "")),
                actions=_patterns(statement.get("Action")),
                not_actions=_patterns(statement.get("NotAction")),
                resources=_patterns(statement.get("Resource")),
                not_resources=_patterns(statement.get("NotResource")),
                # NotPrincipal in an Allow grants everyone but the few it names.
                principals=("*",) if "NotPrincipal" in statement else _principals(statement.get("Principal")),
                conditions=mapping(statement.get("Condition")),
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class Document:
    """One policy document a resource carries, parsed, or why it could not be."""

    where: str
    statements: tuple[Statement, ...] | Unknown
    error: str | None = None


def _document(where: str, fn: Any) -> Document:
    raw = read(fn)
    if isinstance(raw, Unknown):
        return Document(where, raw)
    if raw is None:
        return Document(where, ())
    parsed = read(lambda: statements(raw, where))
    if isinstance(parsed, Unknown):
        return Document(where, parsed)
    return Document(where, parsed)


def _safe_document(where: str, fn: Any) -> Document:
    try:
        return _document(where, fn)
    except ValueError as error:
        return Document(where, (), str(error))


@dataclass(frozen=True)
class IamView:
    permissions: tuple[Document, ...]
    """Identity policy documents: what the principal may do."""
    managed_arns: tuple[str | Unknown, ...]
    """Managed policies attached (attachment resources, `managedPolicyArns`, exclusive attachments)."""
    trust: tuple[Document, ...]
    """A role's assume-role policy."""
    resource_policies: tuple[Document, ...]
    """Policies on the resource itself: who may use it."""


EMPTY_IAM = IamView((), (), (), ())


def _arns(value: Any) -> tuple[str | Unknown, ...]:
    return tuple(str(v) for v in items(value)) if value is not None else ()


def iam_of(resource_type: str, props: Mapping[str, Any]) -> IamView:
    if resource_type in IDENTITY_POLICY_TYPES:
        return IamView((_safe_document("policy", lambda: props.get("policy")),), (), (), ())
    if resource_type == ROLE:
        inline = read(lambda: items(props.get("inlinePolicies")))
        if isinstance(inline, Unknown):
            permissions: tuple[Document, ...] = (Document("inlinePolicies", inline),)
        else:
            entries = inline

            def policy_of(i: int) -> Any:
                return mapping(entries[i]).get("policy")

            def name_of(i: int) -> str:
                name = read_key(mapping(entries[i]), "name")
                return name if isinstance(name, str) and name else str(i)

            permissions = tuple(
                _safe_document(f"inline policy {name_of(i)}", partial(policy_of, i)) for i in range(len(entries))
            )
        managed = read(lambda: _arns(props.get("managedPolicyArns")))
        trust = (_safe_document("assumeRolePolicy", lambda: props.get("assumeRolePolicy")),)
        return IamView(permissions, managed if isinstance(managed, tuple) else (managed,), trust, ())
    if resource_type in ATTACHMENT_TYPES:
        arn = read(lambda: text(props.get("policyArn")))
        return IamView((), (arn,) if arn is not None else (), (), ())
    if resource_type in EXCLUSIVE_ATTACHMENT_TYPES:
        arns = read(lambda: _arns(props.get("policyArns")))
        return IamView((), arns if isinstance(arns, tuple) else (arns,), (), ())
    if resource_type in RESOURCE_POLICY_TYPES:
        key = RESOURCE_POLICY_TYPES[resource_type]
        return IamView((), (), (), (_safe_document(key, lambda: props.get(key)),))
    return EMPTY_IAM


def managed_policy_name(arn: str) -> str:
    """`AdministratorAccess` of `arn:aws:iam::aws:policy/AdministratorAccess` (any partition, any path)."""
    return arn.rsplit("/", 1)[-1] if ":iam::aws:policy/" in arn else ""


def known_statements(documents: Iterable[Document]) -> list[Statement]:
    return [s for d in documents if not isinstance(d.statements, Unknown) for s in d.statements]
