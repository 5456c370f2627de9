"""AWS rules learned building the DR region: mistakes that pass `pulumi preview` and fail (or
silently misbehave) at `pulumi up`, written for any stack.

- A customer key that encrypts launched volumes admits the EC2 Auto Scaling service-linked role.
- No stack changes the account's EBS encryption defaults.
- KMS conditions on an S3 ARN match the encryption context of buckets with S3 Bucket Keys.
- Log delivery (CloudTrail, VPC flow logs) waits for the bucket policy that admits it; S3
  replication waits for versioning on both buckets.

Each check is a pure function over `Graph` (resources, their inputs and what each waits for), so
it reads the same whichever way the pack hands it the stack.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from policies.common import Category, Rule, as_list, config_of, resource_policy, stack_policy, truthy

KMS_KEY = "aws:kms/key:Key"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
DEFAULT_KMS_KEY = "aws:ebs/defaultKmsKey:DefaultKmsKey"
ENCRYPTION_BY_DEFAULT = "aws:ebs/encryptionByDefault:EncryptionByDefault"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
TRAIL = "aws:cloudtrail/trail:Trail"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
IAM_POLICIES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
AUTOSCALING_ROLE = "/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
S3_CONTEXT_KEY = "kms:encryptioncontext:aws:s3:arn"


# -- the stack as the checks read it ----------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One resource: its inputs (only those known), and the resources its inputs come from."""

    urn: str
    name: str
    type: str
    props: Mapping[str, Any]
    inputs_from: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> URNs of the resources whose outputs flow into it."""
    depends_on: tuple[str, ...] = ()
    parent: str | None = None


@dataclass(frozen=True)
class Graph:
    nodes: Mapping[str, Node]

    def of_type(self, *types: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type in types]

    def attached(self, types: Iterable[str], input_name: str = "bucket") -> dict[str, list[Node]]:
        """Target URN -> the nodes of `types` whose `input_name` comes from it."""
        wanted = set(types)
        found: dict[str, list[Node]] = {}
        for node in self.nodes.values():
            if node.type in wanted:
                for urn in node.inputs_from.get(input_name, ()):
                    found.setdefault(urn, []).append(node)
        return found

    def waits_for(self, node: Node, target: str) -> bool:
        """Created only after `target`: explicit and input dependencies, and parents (a child
        registers once its parent has, and a component once its own dependencies exist)."""
        seen: set[str] = set()
        pending = [node.urn]
        while pending:
            current = self.nodes.get(pending.pop())
            if current is None or current.urn in seen:
                continue
            seen.add(current.urn)
            edges = [*current.depends_on, *(u for urns in current.inputs_from.values() for u in urns)]
            if current.parent:
                edges.append(current.parent)
            if target in edges:
                return True
            pending.extend(edges)
        return False


def _known(read: Any) -> Any:
    """A property read that yields None where the engine has not decided the value yet (preview)."""
    try:
        return read()
    except UnknownValueError:
        return None


def graph_of(resources: Iterable[PolicyResource]) -> Graph:
    """The stack the engine sends a stack policy, as a `Graph`."""
    nodes: dict[str, Node] = {}
    for resource in resources:
        nodes[resource.urn] = Node(
            urn=resource.urn,
            name=resource.name,
            type=resource.resource_type,
            props=resource.props,
            inputs_from={key: tuple(r.urn for r in deps) for key, deps in resource.property_dependencies.items()},
            depends_on=tuple(r.urn for r in resource.dependencies),
            parent=resource.parent.urn if resource.parent is not None else None,
        )
    return Graph(nodes)


Finding = tuple[str, str | None]
"""(message, URN of the resource to fix)."""


def _statements(document: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return
    if not isinstance(document, Mapping):
        return
    for statement in as_list(document.get("Statement") or []):
        if isinstance(statement, Mapping):
            yield statement


def _actions_cover(statement: Mapping[str, Any], action: str) -> bool:
    return any(fnmatch.fnmatch(action.lower(), str(a).lower()) for a in as_list(statement.get("Action") or []))


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if isinstance(principal, Mapping):
        return [str(p) for p in as_list(principal.get("AWS") or [])]
    return [str(principal)] if principal is not None else []


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


def key_admits_launchers(graph: Graph) -> list[Finding]:
    findings: list[Finding] = []
    for user in [*graph.of_type(LAUNCH_TEMPLATE), *graph.of_type(DEFAULT_KMS_KEY)]:
        inputs = "blockDeviceMappings" if user.type == LAUNCH_TEMPLATE else "keyArn"
        for key in (graph.nodes.get(u) for u in user.inputs_from.get(inputs, ())):
            if key is None or key.type != KMS_KEY:
                continue
            policy = _known(lambda key=key: key.props.get("policy"))
            admitted = [
                s
                for s in _statements(policy)
                if s.get("Effect") == "Allow" and any(p.endswith(AUTOSCALING_ROLE) for p in _principals(s))
            ]
            missing = [a for a in LAUNCHER_NEEDS if not any(_actions_cover(s, a) for s in admitted)]
            if missing:
                findings.append(
                    (
                        f"{key.name} encrypts volumes {user.name} launches, but its key policy does not let the Auto "
                        f"Scaling service-linked role {', '.join(missing)}: instances fail to launch.",
                        key.urn,
                    )
                )
    return findings


def _key_admits_launchers(args: StackValidationArgs, report: ReportViolation) -> None:
    for message, urn in key_admits_launchers(graph_of(args.resources)):
        report(message, urn)


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
    config={"allowAccountDefaults": {"type": "boolean", "default": False}},
)


def _ebs_account_defaults(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not config_of(args, EBS_ACCOUNT_DEFAULTS)["allowAccountDefaults"]:
        report(f"{args.name} changes an account-wide EBS default ({args.resource_type.rsplit(':', 1)[-1]}).", None)


# -- KMS conditions and S3 Bucket Keys ---------------------------------------------------------

S3_KMS_CONTEXT = Rule(
    "aws-iam-policy-s3-kms-context-matches-bucket-keys",
    "An IAM policy's kms:EncryptionContext:aws:s3:arn condition naming a bucket with S3 Bucket Keys must match "
    "the bucket ARN itself: with Bucket Keys, KMS sees the bucket ARN, not the object's.",
    Severity.HIGH,
    "Add arn:aws:s3:::<bucket> (no /*) to the condition's values (S3 User Guide, 'Reducing the cost of SSE-KMS "
    "with Amazon S3 Bucket Keys': 'S3 Bucket Keys use the bucket ARN as encryption context').",
    Category.SECURITY,
)


def bucket_key_buckets(graph: Graph) -> dict[str, str]:
    """Bucket name -> URN, for the buckets whose default encryption uses an S3 Bucket Key."""
    found: dict[str, str] = {}
    configs = graph.attached(ENCRYPTION_CONFIGS)
    for bucket in graph.of_type(*BUCKETS):
        name = _known(lambda bucket=bucket: bucket.props.get("bucket"))
        rules = [
            r for c in configs.get(bucket.urn, []) for r in as_list(_known(lambda c=c: c.props.get("rules")) or [])
        ]
        if isinstance(name, str) and any(isinstance(r, Mapping) and truthy(r.get("bucketKeyEnabled")) for r in rules):
            found[name] = bucket.urn
    return found


def _context_values(statement: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(operator, values) of each condition on the S3 encryption context."""
    found = []
    for operator, block in (statement.get("Condition") or {}).items():
        if isinstance(block, Mapping):
            for key, values in block.items():
                if str(key).lower() == S3_CONTEXT_KEY:
                    found.append((str(operator), [str(v) for v in as_list(values)]))
    return found


def _matches(operator: str, pattern: str, value: str) -> bool:
    if "Like" in operator:  # StringLike, ArnLike and their ForAnyValue/IfExists forms
        return fnmatch.fnmatchcase(value, pattern)
    return pattern == value


def s3_kms_context(graph: Graph) -> list[Finding]:
    findings: list[Finding] = []
    bucket_keys = bucket_key_buckets(graph)
    for policy in graph.of_type(*IAM_POLICIES):
        document = _known(lambda policy=policy: policy.props.get("policy"))
        for statement in _statements(document):
            for operator, values in _context_values(statement):
                for bucket in bucket_keys:
                    arn = f"arn:aws:s3:::{bucket}"
                    named = [v for v in values if v == arn or v.startswith(f"{arn}/")]
                    if named and not any(_matches(operator, v, arn) for v in values):
                        findings.append(
                            (
                                f"{policy.name}: kms:EncryptionContext:aws:s3:arn allows {', '.join(named)}, but "
                                f"{bucket} uses S3 Bucket Keys, so KMS sees {arn}: the condition never matches.",
                                policy.urn,
                            )
                        )
    return findings


def _s3_kms_context(args: StackValidationArgs, report: ReportViolation) -> None:
    for message, urn in s3_kms_context(graph_of(args.resources)):
        report(message, urn)


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


def _waits_for_any(graph: Graph, node: Node, targets: list[Node]) -> bool:
    return any(graph.waits_for(node, t.urn) for t in targets)


def trail_after_policy(graph: Graph) -> list[Finding]:
    policies = graph.attached([BUCKET_POLICY])
    findings: list[Finding] = []
    for trail in graph.of_type(TRAIL):
        for bucket in trail.inputs_from.get("s3BucketName", ()):
            attached = policies.get(bucket, [])
            if attached and not _waits_for_any(graph, trail, attached):
                findings.append((f"{trail.name} may be created before {attached[0].name}.", trail.urn))
    return findings


def flow_log_after_policy(graph: Graph) -> list[Finding]:
    policies = graph.attached([BUCKET_POLICY])
    by_name = {_known(lambda b=b: b.props.get("bucket")): b.urn for b in graph.of_type(*BUCKETS)}
    findings: list[Finding] = []
    for flow_log in graph.of_type(FLOW_LOG):
        destination = _known(lambda f=flow_log: f.props.get("logDestination"))
        buckets = set(flow_log.inputs_from.get("logDestination", ()))
        if isinstance(destination, str) and destination.startswith("arn:aws:s3:::"):
            name = destination.removeprefix("arn:aws:s3:::").split("/", 1)[0]
            buckets.update([by_name[name]] if name in by_name else [])
        for bucket in buckets:
            attached = policies.get(bucket, [])
            if attached and not _waits_for_any(graph, flow_log, attached):
                findings.append((f"{flow_log.name} may be created before {attached[0].name}.", flow_log.urn))
    return findings


def replication_after_versioning(graph: Graph) -> list[Finding]:
    versionings = graph.attached(VERSIONINGS)
    findings: list[Finding] = []
    for replication in graph.of_type(REPLICATION):
        buckets = [*replication.inputs_from.get("bucket", ()), *replication.inputs_from.get("rules", ())]
        for bucket in dict.fromkeys(b for b in buckets if graph.nodes.get(b) and graph.nodes[b].type in BUCKETS):
            for versioning in versionings.get(bucket, []):
                if not graph.waits_for(replication, versioning.urn):
                    findings.append((f"{replication.name} may be created before {versioning.name}.", replication.urn))
    return findings


def _reporting(check: Any) -> Any:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for message, urn in check(graph_of(args.resources)):
            report(message, urn)

    return validate


POLICIES = [
    stack_policy(KEY_ADMITS_LAUNCHERS, _key_admits_launchers),
    resource_policy(EBS_ACCOUNT_DEFAULTS, [ENCRYPTION_BY_DEFAULT, DEFAULT_KMS_KEY], _ebs_account_defaults),
    stack_policy(S3_KMS_CONTEXT, _s3_kms_context),
    stack_policy(TRAIL_AFTER_POLICY, _reporting(trail_after_policy)),
    stack_policy(FLOW_LOG_AFTER_POLICY, _reporting(flow_log_after_policy)),
    stack_policy(REPLICATION_AFTER_VERSIONING, _reporting(replication_after_versioning)),
]
