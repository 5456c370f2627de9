"""AWS platform rules: the Kubernetes control plane and its nodes, compute instances, load balancer
listeners and the audit trail."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule
from policies.model.cidr import CidrSet
from policies.model.subject import Subject
from policies.model.values import dig, flag, is_set, items, mapping, number, one_or_many, text

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
TRAIL = "aws:cloudtrail/trail:Trail"
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
# TLS 1.2+ listener policies (pulumi/compliance-policies aws-lb-listener-configure-secure-tls).
SECURE_TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
)

EKS_SECRETS = Rule(
    "aws-eks-cluster-secrets-encrypted",
    "EKS clusters must encrypt Kubernetes secrets with a KMS key (envelope encryption).",
    Severity.HIGH,
    "Set encryption_config with resources ['secrets'] and provider.key_arn of a customer managed key.",
    Category.SECURITY,
)


def _eks_secrets(subject: Subject, ctx: Ctx) -> None:
    def encrypts_secrets(config: Any) -> bool:
        return "secrets" in items(mapping(config).get("resources")) and is_set(
            lambda: dig(config, "provider", "keyArn")
        )

    if not any(encrypts_secrets(c) for c in one_or_many(subject.get("encryptionConfig"))):
        ctx.violation("secrets are not encrypted with a KMS key (encryptionConfig).")


EKS_ENDPOINT = Rule(
    "aws-eks-cluster-endpoint-not-public",
    "An EKS cluster's API endpoint must be private, or public only to named networks.",
    Severity.CRITICAL,
    "Set vpc_config.endpoint_public_access=False, or public_access_cidrs to the operators' networks.",
    Category.SECURITY,
)


def _eks_endpoint(subject: Subject, ctx: Ctx) -> None:
    config = mapping(subject.get("vpcConfig"))
    if flag(config.get("endpointPublicAccess")) is False:
        return
    sources = CidrSet.of(items(config.get("publicAccessCidrs")))
    if not sources:
        ctx.violation("the API endpoint is public to every address (no publicAccessCidrs).")
    elif sources.is_public() or sources.invalid:
        ctx.violation(f"the API endpoint is public to {sources.describe()}.")


EKS_LOGS = Rule(
    "aws-eks-cluster-control-plane-logs",
    "EKS clusters must log the control plane's API, audit and authenticator streams.",
    Severity.MEDIUM,
    "Set enabled_cluster_log_types to include api, audit and authenticator.",
    Category.SECURITY,
    config={
        "requiredLogTypes": {"type": "array", "items": {"type": "string"}, "default": ["api", "audit", "authenticator"]}
    },
)


def _eks_logs(subject: Subject, ctx: Ctx) -> None:
    enabled = {str(t) for t in items(subject.get("enabledClusterLogTypes"))}
    missing = [t for t in ctx.config["requiredLogTypes"] if t not in enabled]
    if missing:
        ctx.violation(f"control plane logs {', '.join(missing)} are off.")


EKS_VERSION = Rule(
    "aws-eks-cluster-supported-version",
    "EKS clusters must run a Kubernetes version in the supported list.",
    Severity.HIGH,
    "Upgrade the cluster (settings: kubernetes version) to a supported minor version.",
    Category.SECURITY,
    config={
        "supportedVersions": {
            "type": "array",
            "items": {"type": "string"},
            # checkov CKV_AWS_339 at 3.3.13.
            "default": ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"],
        }
    },
)


def _eks_version(subject: Subject, ctx: Ctx) -> None:
    version = text(subject.get("version"))
    if version is None:
        ctx.violation("no version is pinned (EKS would pick its default, outside review).")
    elif version not in ctx.config["supportedVersions"]:
        ctx.violation(f"version {version} is not supported ({', '.join(ctx.config['supportedVersions'])}).")


NODE_GROUP_SSH = Rule(
    "aws-eks-nodegroup-no-public-ssh",
    "EKS node groups with SSH access must restrict it to named security groups.",
    Severity.HIGH,
    "Drop remote_access, or set remote_access.source_security_group_ids (EKS otherwise opens 22 to 0.0.0.0/0).",
    Category.SECURITY,
)


def _node_group_ssh(subject: Subject, ctx: Ctx) -> None:
    access = mapping(subject.get("remoteAccess"))
    if access.get("ec2SshKey") and not items(access.get("sourceSecurityGroupIds")):
        ctx.violation("remoteAccess opens SSH to 0.0.0.0/0 (no sourceSecurityGroupIds).")


EC2_PUBLIC_IP = Rule(
    "aws-ec2-instance-no-public-ip",
    "EC2 instances and launch templates must not ask for a public IP address.",
    Severity.HIGH,
    "Set associate_public_ip_address=False; reach instances through a load balancer, SSM or a bastion.",
    Category.SECURITY,
)


def _ec2_public_ip(subject: Subject, ctx: Ctx) -> None:
    if flag(subject.get("associatePublicIpAddress")) is True:
        ctx.violation("associatePublicIpAddress is true.")
    for index, interface in enumerate(items(subject.get("networkInterfaces"))):
        if flag(mapping(interface).get("associatePublicIpAddress")) is True:
            ctx.violation(f"network interface {index} asks for a public IP address.")


IMDSV2 = Rule(
    "aws-ec2-instance-imdsv2-required",
    "EC2 instances and launch templates must require IMDSv2 session tokens.",
    Severity.MEDIUM,
    "Set metadata_options.http_tokens='required'.",
    Category.SECURITY,
)


def _imdsv2(subject: Subject, ctx: Ctx) -> None:
    options = mapping(subject.get("metadataOptions"))
    if options.get("httpEndpoint") == "disabled":
        return
    if options.get("httpTokens") != "required":
        ctx.violation("metadataOptions.httpTokens is not 'required' (IMDSv1 allowed).")


LISTENER_TLS = Rule(
    "aws-lb-listener-tls",
    "Load balancer listeners must use TLS 1.2+ policies; plain HTTP only to redirect to HTTPS.",
    Severity.CRITICAL,
    "Use protocol HTTPS/TLS with ssl_policy ELBSecurityPolicy-TLS13-1-2-2021-06; make an HTTP listener's default "
    "action a redirect to HTTPS.",
    Category.SECURITY,
)


def _listener_tls(subject: Subject, ctx: Ctx) -> None:
    protocol = str(subject.get("protocol") or "").upper()
    if protocol in ("HTTPS", "TLS"):
        policy = text(subject.get("sslPolicy"))
        if policy not in SECURE_TLS_POLICIES:
            ctx.violation(f"sslPolicy {policy or '(the default)'} allows TLS below 1.2 or weak ciphers.")
        return
    actions = [mapping(a) for a in items(subject.get("defaultActions"))]
    redirects = actions and all(
        a.get("type") == "redirect" and str(dig(a, "redirect", "protocol")).upper() == "HTTPS" for a in actions
    )
    port = number(subject.get("port"))
    if protocol in ("HTTP", "") and not redirects:
        ctx.violation(f"port {port or 80:g} serves plain HTTP (not a redirect to HTTPS).")
    elif protocol in ("TCP", "UDP", "TCP_UDP") and port == 80:
        ctx.violation("port 80 is forwarded unencrypted.")


TRAIL_VALIDATION = Rule(
    "aws-cloudtrail-trail-log-validation",
    "CloudTrail trails must validate their log files.",
    Severity.MEDIUM,
    "Set enable_log_file_validation=True.",
    Category.SECURITY,
)


def _trail_validation(subject: Subject, ctx: Ctx) -> None:
    if flag(subject.get("enableLogFileValidation")) is not True:
        ctx.violation("enableLogFileValidation is not true.")


TRAIL_ENCRYPTED = Rule(
    "aws-cloudtrail-trail-encrypted",
    "CloudTrail trails must encrypt their logs with a KMS key.",
    Severity.MEDIUM,
    "Set kms_key_id to a customer managed key whose policy lets CloudTrail encrypt.",
    Category.SECURITY,
)


def _trail_encrypted(subject: Subject, ctx: Ctx) -> None:
    if not is_set(lambda: subject.get("kmsKeyId")):
        ctx.violation("kmsKeyId is not set.")


TRAIL_MULTI_REGION = Rule(
    "aws-cloudtrail-trail-multi-region",
    "CloudTrail trails must record every region and the global services.",
    Severity.MEDIUM,
    "Set is_multi_region_trail=True and include_global_service_events=True.",
    Category.SECURITY,
)


def _trail_multi_region(subject: Subject, ctx: Ctx) -> None:
    if flag(subject.get("isMultiRegionTrail")) is not True:
        ctx.violation("isMultiRegionTrail is not true.")
    if flag(subject.get("includeGlobalServiceEvents")) is False:
        ctx.violation("includeGlobalServiceEvents is false.")


POLICIES = [
    EKS_SECRETS.resource([EKS_CLUSTER], _eks_secrets),
    EKS_ENDPOINT.resource([EKS_CLUSTER], _eks_endpoint),
    EKS_LOGS.resource([EKS_CLUSTER], _eks_logs),
    EKS_VERSION.resource([EKS_CLUSTER], _eks_version),
    NODE_GROUP_SSH.resource([EKS_NODE_GROUP], _node_group_ssh),
    EC2_PUBLIC_IP.resource([EC2_INSTANCE, LAUNCH_TEMPLATE], _ec2_public_ip),
    IMDSV2.resource([EC2_INSTANCE, LAUNCH_TEMPLATE], _imdsv2),
    LISTENER_TLS.resource(LISTENERS, _listener_tls),
    TRAIL_VALIDATION.resource([TRAIL], _trail_validation),
    TRAIL_ENCRYPTED.resource([TRAIL], _trail_encrypted),
    TRAIL_MULTI_REGION.resource([TRAIL], _trail_multi_region),
]
