"""Kubernetes rules: locked-down workloads, pinned images, default-deny data namespaces, no leaked secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policies.common import Category, Rule, as_list, config_of, resource_policy, stack_policy

POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOADS = tuple(POD_SPEC_PATHS)
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DATA_TIER_LABEL = "sophia.ai/tier"
SECRET_NAME = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)", re.IGNORECASE)
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
DATA_NAMESPACES = {
    "dataNamespaces": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["sophia-data"],
        "description": f"Namespaces holding data stores (namespaces labelled {DATA_TIER_LABEL}=data count too).",
    }
}


def pod_spec(args_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = props
    for key in POD_SPEC_PATHS[args_type]:
        node = (node or {}).get(key)
    return node or {}


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


NO_PRIVILEGED = Rule(
    "kubernetes-workload-no-privileged",
    "No privileged containers, privilege escalation or host namespaces.",
    Severity.CRITICAL,
    "Drop securityContext.privileged / allowPrivilegeEscalation and hostNetwork, hostPID, hostIPC.",
    Category.SECURITY,
)


def _no_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            report(f"{key} is true.", None)
    for container in containers(spec):
        context = container.get("securityContext") or {}
        if context.get("privileged") is True:
            report(f"container {container.get('name')} is privileged.", None)
        if context.get("allowPrivilegeEscalation") is True:
            report(f"container {container.get('name')} allows privilege escalation.", None)


NON_ROOT = Rule(
    "kubernetes-workload-run-as-non-root",
    "Every container must run as non-root.",
    Severity.HIGH,
    "Set securityContext.runAsNonRoot=true and a non-zero runAsUser on the pod or each container.",
    Category.SECURITY,
)


def _non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    pod_context = spec.get("securityContext") or {}
    for container in containers(spec):
        context = {**pod_context, **(container.get("securityContext") or {})}
        if context.get("runAsNonRoot") is not True or context.get("runAsUser") in (0, 0.0):
            report(f"container {container.get('name')} may run as root.", None)


RESOURCES_SET = Rule(
    "kubernetes-workload-resources-set",
    "Every container must set CPU and memory requests and limits.",
    Severity.MEDIUM,
    "Set resources.requests and resources.limits (cpu and memory) on each container.",
    Category.SECURITY,
)


def _resources_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(pod_spec(args.resource_type, args.props)):
        resources = container.get("resources") or {}
        missing = [
            f"{kind}.{what}"
            for kind in ("requests", "limits")
            for what in ("cpu", "memory")
            if not (resources.get(kind) or {}).get(what)
        ]
        if missing:
            report(f"container {container.get('name')} lacks {', '.join(missing)}.", None)


IMAGE_PINNED = Rule(
    "kubernetes-workload-image-pinned",
    "Container images must be pinned to a version tag or digest (no :latest, no untagged).",
    Severity.MEDIUM,
    "Use image:1.2.3 or image@sha256:<digest>.",
    Category.SECURITY,
)


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    return last.rsplit(":", 1)[1] not in ("", "latest")


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(pod_spec(args.resource_type, args.props)):
        image = str(container.get("image") or "")
        if not image_is_pinned(image):
            report(f"container {container.get('name')} image {image!r} is not pinned.", None)


def _namespace_of(props: Mapping[str, Any]) -> str | None:
    namespace = (props.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _data_namespaces(args: StackValidationArgs, configured: list[str]) -> set[str]:
    """Configured or labelled data namespaces that this stack actually puts something in."""
    labelled = {
        str((r.props.get("metadata") or {}).get("name"))
        for r in args.resources
        if r.resource_type == NAMESPACE
        and ((r.props.get("metadata") or {}).get("labels") or {}).get(DATA_TIER_LABEL) == "data"
    }
    declared = {
        str((r.props.get("metadata") or {}).get("name")) for r in args.resources if r.resource_type == NAMESPACE
    }
    used = declared | {ns for r in args.resources if (ns := _namespace_of(r.props)) is not None}
    return (set(configured) | labelled) & used


DEFAULT_DENY = Rule(
    "kubernetes-namespace-default-deny",
    "Each data namespace needs a default-deny NetworkPolicy (empty podSelector, Ingress, no rules).",
    Severity.HIGH,
    "Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules; then allow only "
    "the ports each store needs.",
    Category.SECURITY,
    config=DATA_NAMESPACES,
)


def _is_default_deny(props: Mapping[str, Any]) -> bool:
    spec = props.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return (
        not selector.get("matchLabels")
        and not selector.get("matchExpressions")
        and "Ingress" in (spec.get("policyTypes") or [])
        and not spec.get("ingress")
    )


def _default_deny(args: StackValidationArgs, report: ReportViolation) -> None:
    covered = {
        _namespace_of(r.props)
        for r in args.resources
        if r.resource_type == NETWORK_POLICY and _is_default_deny(r.props)
    }
    for namespace in sorted(_data_namespaces(args, config_of(args, DEFAULT_DENY)["dataNamespaces"])):
        if namespace not in covered:
            report(f"namespace {namespace} has no default-deny NetworkPolicy.", None)


NO_PUBLIC_STORE = Rule(
    "kubernetes-service-no-public-datastore",
    "No data store may be exposed through a LoadBalancer Service open to the internet: one in front of "
    "a store must list loadBalancerSourceRanges, none of them 0.0.0.0/0.",
    Severity.CRITICAL,
    "Use a ClusterIP Service; where another region must connect (replication), set "
    "loadBalancerSourceRanges to that region's egress addresses.",
    Category.SECURITY,
    config=DATA_NAMESPACES,
)


def _no_public_store(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = args.props.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return
    data_namespaces = set(config_of(args, NO_PUBLIC_STORE)["dataNamespaces"])
    selects_store = (spec.get("selector") or {}).get(DATA_TIER_LABEL) == "data"
    if _namespace_of(args.props) not in data_namespaces and not selects_store:
        return
    sources = [cidr for cidr in as_list(spec.get("loadBalancerSourceRanges")) if cidr]
    if not sources:
        report("LoadBalancer Service in front of a data store, open to every address.", None)
    elif any(str(cidr).endswith("/0") for cidr in sources):
        report(f"LoadBalancer Service in front of a data store admits {', '.join(map(str, sources))}.", None)


NO_PLAIN_SECRETS = Rule(
    "kubernetes-config-no-plaintext-secrets",
    "Secret values belong in Secrets: not in ConfigMaps or literal env values.",
    Severity.HIGH,
    "Put the value in a kubernetes Secret (from a Pulumi secret) and use valueFrom.secretKeyRef.",
    Category.SECURITY,
)


def _no_plain_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CONFIG_MAP:
        for key, value in (args.props.get("data") or {}).items():
            if SECRET_NAME.search(str(key)) or PEM_PRIVATE_KEY.search(str(value)):
                report(f"ConfigMap key {key!r} looks like a secret.", None)
        return
    for container in containers(pod_spec(args.resource_type, args.props)):
        for variable in container.get("env") or []:
            if SECRET_NAME.search(str(variable.get("name"))) and variable.get("value") is not None:
                report(f"container {container.get('name')} sets {variable.get('name')} as a literal.", None)


PVC_RETAINED = Rule(
    "kubernetes-statefulset-volumes-retained",
    "StatefulSets must keep their volumes when deleted or scaled down.",
    Severity.HIGH,
    "Set persistentVolumeClaimRetentionPolicy whenDeleted and whenScaled to Retain.",
    Category.SECURITY,
)


def _pvc_retained(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = args.props.get("spec") or {}
    if not spec.get("volumeClaimTemplates"):
        return
    policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        if policy.get(key, "Retain") != "Retain":
            report(f"persistentVolumeClaimRetentionPolicy.{key} is {policy.get(key)}; data would be deleted.", None)


POLICIES = [
    resource_policy(NO_PRIVILEGED, WORKLOADS, _no_privileged),
    resource_policy(NON_ROOT, WORKLOADS, _non_root),
    resource_policy(RESOURCES_SET, WORKLOADS, _resources_set),
    resource_policy(IMAGE_PINNED, WORKLOADS, _image_pinned),
    stack_policy(DEFAULT_DENY, _default_deny),
    resource_policy(NO_PUBLIC_STORE, [SERVICE], _no_public_store),
    resource_policy(NO_PLAIN_SECRETS, [CONFIG_MAP, *WORKLOADS], _no_plain_secrets),
    resource_policy(PVC_RETAINED, ["kubernetes:apps/v1:StatefulSet"], _pvc_retained),
]
