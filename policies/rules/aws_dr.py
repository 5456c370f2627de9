"""AWS rules learned building the DR region: mistakes that pass `pulumi preview` and fail (or
silently misbehave) at `pulumi up`, written for any stack.

- A customer key that encrypts launched volumes admits the EC2 Auto Scaling service-linked role.
- No stack changes the account's EBS encryption defaults.
- KMS conditions on an S3 ARN match the encryption context of buckets with S3 Bucket Keys.
- Log delivery (CloudTrail, VPC flow logs) waits for the bucket policy that admits it; S3
  replication waits for versioning on both buckets.

All but the EBS rule join resources, so they are stack rules over the `StackView`: a key and the
launch templates its ARN flows into, a bucket and its settings, a resource and what the engine
creates before it (`StackView.waits_for`: explicit dependencies, input dependencies and parents).
A value the engine does not know yet (a first preview) leaves the verdict on the resource that
needs it undetermined, reported as such; the other resources are still judged.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from functools import partial
from typing import Any

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule
from policies.model.iam import IAM_TYPES, RESOURCE_POLICY_TYPES, Statement, statements
from policies.model.subject import StackView, Subject
from policies.model.values import Undetermined, Unknown, flag, items, json_document, mapping, need, one_or_many, read
from policies.rules.aws import (
    BUCKET_POLICIES,
    BUCKETS,
    EBS_DEFAULT_ENCRYPTION,
    ENCRYPTION_CONFIGS,
    KMS_KEY,
    KMS_KEY_POLICY,
    LAUNCH_TEMPLATE,
    REPLICATIONS,
    VERSIONINGS,
)

DEFAULT_KMS_KEY = "aws:ebs/defaultKmsKey:DefaultKmsKey"
TRAIL = "aws:cloudtrail/trail:Trail"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
AUTOSCALING_ROLE = "/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling".lower()
S3_CONTEXT_KEY = "kms:encryptioncontext:aws:s3:arn"
S3_ARN = "arn:aws:s3:::"


# -- joins ------------------------------------------------------------------------------------


def _bucket_name(bucket: Subject) -> str | Unknown | None:
    name = read(lambda: bucket.get("bucket"))
    return name if isinstance(name, (str, Unknown)) else None


def _settings(view: StackView, bucket: Subject, types: Iterable[str]) -> list[Subject]:
    """The bucket's settings resources of `types`, by output dependency or by its name written literally."""
    name = _bucket_name(bucket)
    return view.referencing(bucket, types, "bucket", [name] if isinstance(name, str) and name else [])


def _named(view: StackView, name: str) -> list[Subject]:
    """The stack's buckets called `name`; undetermined when none is and another's name is unknown."""
    names = {b.urn: _bucket_name(b) for b in view.of_type(*BUCKETS)}
    found = [view.by_urn[urn] for urn, n in names.items() if n == name]
    unknown = [view.by_urn[urn] for urn, n in names.items() if isinstance(n, Unknown)]
    if not found and unknown:
        raise Undetermined(f"the name of {unknown[0].name}, which may be {name},")
    return found


def _buckets_in(view: StackView, subject: Subject, key: str, literal: Any) -> list[Subject]:
    """The stack's buckets `subject`'s input `key` names: those whose outputs flow into it, and,
    when it is written literally, those with the name `literal(value)` gives (None: not a bucket)."""
    found = [view.by_urn[u] for u in subject.property_dependencies.get(key, ()) if u in view.by_urn]
    buckets = [b for b in found if b.resource_type in BUCKETS]
    if not found:
        name = literal(need(read(lambda: subject.get(key))))
        if isinstance(name, str) and name:
            buckets += _named(view, name)
    return buckets


def _arn_bucket(value: Any) -> str | None:
    """`name` of an `arn:aws:s3:::name[/prefix]` value."""
    if isinstance(value, str) and value.startswith(S3_ARN):
        return value.removeprefix(S3_ARN).split("/", 1)[0]
    return None


def _waits_for_one(view: StackView, subject: Subject, targets: list[Subject]) -> bool:
    return any(view.waits_for(subject, t.urn) for t in targets)


# -- a key that encrypts launched volumes admits Auto Scaling -----------------------------------

KEY_ADMITS_LAUNCHERS = Rule(
    "aws-kms-key-admits-volume-launchers",
    "A customer KMS key that encrypts volumes launched from a launch template (EKS managed node groups, "
    "Auto Scaling groups) must admit the EC2 Auto Scaling service-linked role: use, and grants for AWS resources.",
    Severity.HIGH,
    "Add key-policy statements for arn:aws:iam::<account>:role/aws-service-role/autoscaling.amazonaws.com/"
    "AWSServiceRoleForAutoScaling: kms:Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey; and "
    "kms:CreateGrant with Bool kms:GrantIsForAWSResource true (EC2 Auto Scaling User Guide, 'Required AWS KMS key "
    "policy for use with encrypted volumes'). Create the role (aws.iam.ServiceLinkedRole) before the key.",
    Category.SECURITY,
)
LAUNCHER_NEEDS = ("kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:CreateGrant")
# Where a key's ARN flows into a resource that makes volumes with it.
KEY_INPUTS = {LAUNCH_TEMPLATE: "blockDeviceMappings", DEFAULT_KMS_KEY: "keyArn"}


def _key_statements(view: StackView, key: Subject) -> list[Statement]:
    """The key's policy statements: a `KeyPolicy` resource's when one sets it, else the key's own
    (none: the default key policy, which admits only the account)."""
    documents = [p.get("policy") for p in view.referencing(key, [KMS_KEY_POLICY], "keyId")] or [key.get("policy")]
    found: list[Statement] = []
    for document in documents:
        if document is None:
            continue
        try:
            found.extend(statements(json_document(document), "policy"))
        except ValueError:
            continue  # not a policy document: KMS refuses it, and the key admits no one here
    return found


def _key_admits_launchers(view: StackView, ctx: Ctx) -> None:
    launched: dict[str, list[Subject]] = {}
    for user in view.of_type(*KEY_INPUTS):
        for urn in user.property_dependencies.get(KEY_INPUTS[user.resource_type], ()):
            key = view.by_urn.get(urn)
            if key is not None and key.resource_type == KMS_KEY and user not in launched.setdefault(urn, []):
                launched[urn].append(user)

    def check(key: Subject) -> None:
        admitted = [
            s
            for s in _key_statements(view, key)
            if s.allow and any(p.startswith("aws:") and p.endswith(AUTOSCALING_ROLE) for p in s.principals)
        ]
        missing = [a for a in LAUNCHER_NEEDS if not any(s.allows(a) for s in admitted)]
        if missing:
            users = ", ".join(u.name for u in launched[key.urn])
            ctx.violation(
                f"{key.name} encrypts volumes {users} launches, but its key policy does not let the Auto Scaling "
                f"service-linked role {', '.join(missing)}: instances fail to launch.",
                key.urn,
            )

    ctx.each([view.by_urn[urn] for urn in launched], check)


# -- account-wide EBS defaults ----------------------------------------------------------------

EBS_ACCOUNT_DEFAULTS = Rule(
    "aws-ebs-account-defaults-unchanged",
    "A stack must not change the account's EBS encryption defaults (encryption by default, default KMS key): "
    "they apply to every volume of the account in the region, and destroying the resource flips them back.",
    Severity.MEDIUM,
    "Encrypt volumes where they are made (launch template block devices, the StorageClass's kmsKeyId, "
    "aws.ebs.Volume kms_key_id); leave account defaults to an account-baseline stack (set allowAccountDefaults "
    "there).",
    Category.SECURITY,
    config={
        "allowAccountDefaults": {
            "type": "boolean",
            "default": False,
            "description": "This stack is the account's baseline: it may manage the account's EBS defaults.",
        }
    },
)


def _ebs_account_defaults(subject: Subject, ctx: Ctx) -> None:
    if not ctx.config["allowAccountDefaults"]:
        ctx.violation(f"it changes an account-wide EBS default ({subject.resource_type.rsplit(':', 1)[-1]}).")


# -- KMS conditions and S3 Bucket Keys ---------------------------------------------------------

S3_KMS_CONTEXT = Rule(
    "aws-iam-policy-s3-kms-context-matches-bucket-keys",
    "An IAM or key policy's kms:EncryptionContext:aws:s3:arn condition naming a bucket with S3 Bucket Keys must "
    "match the bucket ARN itself: with Bucket Keys, KMS sees the bucket ARN, not the object's.",
    Severity.HIGH,
    "Add arn:aws:s3:::<bucket> (no /*) to the condition's values (S3 User Guide, 'Reducing the cost of SSE-KMS "
    "with Amazon S3 Bucket Keys': 'S3 Bucket Keys use the bucket ARN as encryption context').",
    Category.SECURITY,
)
_POSITIVE = ("stringequals", "stringlike", "arnequals", "arnlike")


def _rules_of(node: Any) -> list[Any]:
    """`rule`/`rules` blocks whether given as one object or a list (pulumi-aws 7 flattened them)."""
    return [*one_or_many(mapping(node).get("rule")), *items(mapping(node).get("rules"))]


def _uses_bucket_key(view: StackView, bucket: Subject) -> bool:
    """Whether the bucket's default encryption uses an S3 Bucket Key; unknown values raise."""
    configs = [c.props for c in _settings(view, bucket, ENCRYPTION_CONFIGS)]
    configs += one_or_many(bucket.get("serverSideEncryptionConfiguration"))
    return any(flag(mapping(rule).get("bucketKeyEnabled")) is True for c in configs for rule in _rules_of(c))


def _context_conditions(statement: Statement) -> list[tuple[str, list[str]]]:
    """(operator, values) of each positive condition on the S3 encryption context."""
    found = []
    for operator, block in statement.conditions.items():
        name = str(operator).lower().split(":")[-1].removesuffix("ifexists")
        if name not in _POSITIVE:
            continue
        for key, values in mapping(block).items():
            if str(key).lower() == S3_CONTEXT_KEY:
                found.append((name, [str(v) for v in one_or_many(values)]))
    return found


def _matches(operator: str, pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern) if operator.endswith("like") else pattern == value


def _s3_kms_context(view: StackView, ctx: Ctx) -> None:
    keyed: dict[str, str] = {}
    """Bucket name -> the bucket's resource name, for buckets that use Bucket Keys."""
    pending: list[tuple[str | None, str]] = []
    """(bucket name, or None when it is unknown; what is unknown) for buckets that may use Bucket Keys."""
    for bucket in view.of_type(*BUCKETS):
        name = _bucket_name(bucket)
        uses = read(partial(_uses_bucket_key, view, bucket))
        if uses is False:
            continue
        if isinstance(uses, Unknown):
            known = name if isinstance(name, str) else None
            pending.append((known, f"whether {bucket.name} uses S3 Bucket Keys ({uses.where or 'its encryption'})"))
        elif isinstance(name, Unknown):
            pending.append((None, f"the name of {bucket.name}, which uses S3 Bucket Keys,"))
        elif name:
            keyed[name] = bucket.name
    if not keyed and not pending:
        return

    def judge(subject: Subject, statement: Statement, operator: str, values: list[str]) -> list[str]:
        """Report a condition that never matches; return what could not be known."""
        for name, bucket in keyed.items():
            arn = f"{S3_ARN}{name}"
            named = [v for v in values if v == arn or v.startswith(f"{arn}/")]
            if named and not any(_matches(operator, v, arn) for v in values):
                ctx.violation(
                    f"{subject.name} {statement.where}: kms:EncryptionContext:aws:s3:arn allows {', '.join(named)}, "
                    f"but {bucket} uses S3 Bucket Keys, so KMS sees {arn}: the condition never matches.",
                    subject.urn,
                )
        return [why for unsure, why in pending if unsure is None or any(_arn_bucket(v) == unsure for v in values)]

    def check(subject: Subject) -> None:
        unsure: list[str] = []
        for document in (*subject.iam.permissions, *subject.iam.resource_policies):
            if isinstance(document.statements, Unknown):
                unsure.append(f"{document.where}: the document")
                continue
            for statement in document.statements:
                for operator, values in _context_conditions(statement):
                    unsure += judge(subject, statement, operator, values)
        for why in dict.fromkeys(unsure):
            ctx.undetermined(f"{subject.name}: {Undetermined(why)}", subject.urn)

    ctx.each(view.where(lambda s: s.resource_type in IAM_TYPES or s.resource_type in RESOURCE_POLICY_TYPES), check)


# -- orderings AWS needs ----------------------------------------------------------------------

TRAIL_AFTER_POLICY = Rule(
    "aws-cloudtrail-trail-depends-on-bucket-policy",
    "A CloudTrail trail must be created after the bucket policy that lets CloudTrail write to its bucket.",
    Severity.MEDIUM,
    "Pass ResourceOptions(depends_on=[bucket_policy]) to the trail: it names only the bucket, and CloudTrail "
    "refuses a bucket whose policy is not there yet (InsufficientS3BucketPolicyException).",
    Category.HYGIENE,
)
FLOW_LOG_AFTER_POLICY = Rule(
    "aws-ec2-flowlog-depends-on-bucket-policy",
    "A VPC flow log to S3 must be created after the bucket policy that admits log delivery.",
    Severity.MEDIUM,
    "Pass ResourceOptions(depends_on=[bucket_policy]) to the flow log: otherwise log delivery writes its own "
    "bucket policy over the stack's ('This policy overwrites any existing policy', VPC User Guide).",
    Category.HYGIENE,
)
REPLICATION_AFTER_VERSIONING = Rule(
    "aws-s3-replication-depends-on-versioning",
    "An S3 replication configuration must be created after versioning is enabled on both buckets.",
    Severity.MEDIUM,
    "Pass ResourceOptions(depends_on=[source_versioning, destination_versioning]): the configuration names only "
    "the buckets, and S3 refuses replication between buckets without versioning.",
    Category.HYGIENE,
)


def _after_bucket_policy(view: StackView, ctx: Ctx, subject: Subject, buckets: list[Subject]) -> None:
    for bucket in dict.fromkeys(buckets):
        policies = _settings(view, bucket, BUCKET_POLICIES)
        if policies and not _waits_for_one(view, subject, policies):
            ctx.violation(f"{subject.name} may be created before {policies[0].name}.", subject.urn)


def _trail_after_policy(view: StackView, ctx: Ctx) -> None:
    def check(trail: Subject) -> None:
        _after_bucket_policy(view, ctx, trail, _buckets_in(view, trail, "s3BucketName", lambda v: v))

    ctx.each(view.of_type(TRAIL), check)


def _flow_log_after_policy(view: StackView, ctx: Ctx) -> None:
    def check(flow_log: Subject) -> None:
        kind = read(lambda: flow_log.get("logDestinationType"))
        if kind not in ("s3", None) and not isinstance(kind, Unknown):
            return  # CloudWatch Logs or Firehose
        _after_bucket_policy(view, ctx, flow_log, _buckets_in(view, flow_log, "logDestination", _arn_bucket))

    ctx.each(view.of_type(FLOW_LOG), check)


def _destination(rule: Any) -> Any:
    return mapping(mapping(rule).get("destination")).get("bucket")


def _replication_buckets(view: StackView, replication: Subject) -> list[Subject]:
    """Source (`bucket`) and destinations (`rules[].destination.bucket`, ARNs) in the stack."""
    buckets = _buckets_in(view, replication, "bucket", lambda v: v)
    deps = [view.by_urn[u] for u in replication.property_dependencies.get("rules", ()) if u in view.by_urn]
    buckets += [b for b in deps if b.resource_type in BUCKETS]
    for index, rule in enumerate(items(read(lambda: replication.get("rules")))):
        destination = read(partial(_destination, rule))
        if isinstance(destination, Unknown):
            if not deps:  # an output with nothing it comes from: nothing to join on
                raise Undetermined(f"rules.{index}.destination.bucket")
            continue
        name = _arn_bucket(destination)
        if name:
            buckets += _named(view, name)
    return list(dict.fromkeys(buckets))


def _replication_after_versioning(view: StackView, ctx: Ctx) -> None:
    def check(replication: Subject) -> None:
        for bucket in _replication_buckets(view, replication):
            for versioning in _settings(view, bucket, VERSIONINGS):
                if not view.waits_for(replication, versioning.urn):
                    ctx.violation(f"{replication.name} may be created before {versioning.name}.", replication.urn)

    ctx.each(view.of_type(*REPLICATIONS), check)


POLICIES = [
    KEY_ADMITS_LAUNCHERS.stack(_key_admits_launchers),
    EBS_ACCOUNT_DEFAULTS.resource([EBS_DEFAULT_ENCRYPTION, DEFAULT_KMS_KEY], _ebs_account_defaults),
    S3_KMS_CONTEXT.stack(_s3_kms_context),
    TRAIL_AFTER_POLICY.stack(_trail_after_policy),
    FLOW_LOG_AFTER_POLICY.stack(_flow_log_after_policy),
    REPLICATION_AFTER_VERSIONING.stack(_replication_after_versioning),
]
