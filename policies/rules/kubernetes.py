"""Kubernetes rules over every pod-carrying object (`policies.model.workloads`) and every way to reach
one from outside (`policies.model.exposure`): locked-down containers, pinned images, closed data
namespaces, no exposed data store, least-privilege RBAC, no leaked secrets.

A `*Patch` is judged on the fields it sets: it cannot be blamed for a setting it leaves to the live
object. A Helm release's objects are invisible to the pack (its values are opaque, its templates
not rendered): a release must be of a reviewed chart at a pinned version.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.common import DATA_TIER_LABEL, Category, Ctx, Rule
from policies.model.exposure import INGRESS_KIND, SERVICE_KIND
from policies.model.subject import StackView, Subject
from policies.model.values import Unknown, dig, items, mapping, need, number, text
from policies.model.workloads import Container, PodSpec
from policies.rules.network import DATA_PORTS

RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "credential", "credentials", "passphrase", "auth", "jwt"}
)
SECRET_PAIRS: frozenset[tuple[str, ...]] = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("ssh", "key"), ("apikey",)}
)
# A name ending in these holds a reference to a secret (a file, a path, a lifetime), not the secret.
NOT_SECRET_SUFFIXES = frozenset({"file", "path", "dir", "ttl", "seconds", "timeout", "name", "ref", "length", "type"})
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
AWS_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


def _is_workload(subject: Subject) -> bool:
    return subject.workload is not None


def _spec(subject: Subject) -> PodSpec:
    spec = need(subject.workload)
    assert spec is not None
    return spec


def _containers(spec: PodSpec) -> tuple[Container, ...]:
    return need(spec.containers)


NO_PRIVILEGED = Rule(
    "kubernetes-workload-no-privileged",
    "No privileged containers, privilege escalation (Kubernetes allows it unless allowPrivilegeEscalation is "
    "false) or host namespaces.",
    Severity.CRITICAL,
    "Set securityContext.allowPrivilegeEscalation=false on every container; drop privileged, hostNetwork, "
    "hostPID and hostIPC.",
    Category.SECURITY,
)


def _no_privileged(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for key, value in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc)):
        with ctx.judging(key):
            if need(value) is True:
                ctx.violation(f"{key} is true.")
    for container in _containers(spec):
        with ctx.judging(container.label):
            if need(container.privileged) is True:
                ctx.violation(f"{container.label} is privileged.")
            elif need(container.allow_privilege_escalation) is True:
                ctx.violation(f"{container.label} allows privilege escalation.")
            elif "SYS_ADMIN" in need(container.capabilities_added):
                ctx.violation(f"{container.label} allows privilege escalation (SYS_ADMIN).")
            elif container.allow_privilege_escalation is None and not spec.partial:
                ctx.violation(
                    f"{container.label} allows privilege escalation (allowPrivilegeEscalation unset: Kubernetes "
                    "defaults it to true)."
                )


CAPABILITIES = Rule(
    "kubernetes-workload-capabilities-dropped",
    "Containers must drop ALL capabilities and add none but NET_BIND_SERVICE.",
    Severity.HIGH,
    "Set securityContext.capabilities: {drop: [ALL]} (add NET_BIND_SERVICE only to bind a port below 1024).",
    Category.SECURITY,
)


def _capabilities(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for container in _containers(spec):
        with ctx.judging(container.label):
            added = sorted(need(container.capabilities_added) - RESTRICTED_CAPABILITIES)
            if added:
                ctx.violation(f"{container.label} adds capabilities {', '.join(added)}.")
            if not spec.partial and "ALL" not in need(container.capabilities_dropped):
                ctx.violation(f"{container.label} does not drop ALL capabilities.")


HOST_PATH = Rule(
    "kubernetes-workload-no-host-path",
    "Pods must not mount host paths.",
    Severity.HIGH,
    "Use emptyDir, a PersistentVolumeClaim, a ConfigMap or a Secret; node agents belong in reviewed Helm charts.",
    Category.SECURITY,
)


def _host_path(subject: Subject, ctx: Ctx) -> None:
    for volume, path in need(_spec(subject).host_paths):
        ctx.violation(f"volume {volume} mounts host path {path}.")


HOST_PORT = Rule(
    "kubernetes-workload-no-host-port",
    "Containers must not bind host ports.",
    Severity.MEDIUM,
    "Expose the port through a Service.",
    Category.SECURITY,
)


def _host_port(subject: Subject, ctx: Ctx) -> None:
    for container in _containers(_spec(subject)):
        with ctx.judging(container.label):
            ports = need(container.host_ports)
            if ports:
                ctx.violation(f"{container.label} binds host port {', '.join(map(str, ports))}.")


NON_ROOT = Rule(
    "kubernetes-workload-run-as-non-root",
    "Every container must run as non-root.",
    Severity.HIGH,
    "Set securityContext.runAsNonRoot=true and a non-zero runAsUser on the pod or each container.",
    Category.SECURITY,
)


def _non_root(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for container in _containers(spec):
        with ctx.judging(container.label):
            non_root, user = need(container.run_as_non_root), need(container.run_as_user)
            root = user == 0 or non_root is False
            unproven = non_root is not True and not (user is not None and user > 0)
            if root or (unproven and not spec.partial):
                ctx.violation(f"{container.label} may run as root.")


SECCOMP = Rule(
    "kubernetes-workload-seccomp-profile",
    "Containers must run under the RuntimeDefault (or a Localhost) seccomp profile.",
    Severity.MEDIUM,
    "Set securityContext.seccompProfile.type=RuntimeDefault on the pod.",
    Category.SECURITY,
)


def _seccomp(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for container in _containers(spec):
        with ctx.judging(container.label):
            profile = need(container.seccomp)
            if profile == "Unconfined" or (profile is None and not spec.partial):
                ctx.violation(f"{container.label} runs without a seccomp profile ({profile or 'unset'}).")


READ_ONLY_ROOT = Rule(
    "kubernetes-workload-read-only-root-filesystem",
    "Containers must run with a read-only root filesystem.",
    Severity.HIGH,
    "Set securityContext.readOnlyRootFilesystem=true and mount emptyDir volumes where the program writes.",
    Category.SECURITY,
)


def _read_only_root(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for container in _containers(spec):
        with ctx.judging(container.label):
            value = need(container.read_only_root_filesystem)
            if value is False or (value is None and not spec.partial):
                ctx.violation(f"{container.label} has a writable root filesystem.")


RESOURCES_SET = Rule(
    "kubernetes-workload-resources-set",
    "Every container must set CPU and memory requests and limits.",
    Severity.MEDIUM,
    "Set resources.requests and resources.limits (cpu and memory) on each container.",
    Category.SECURITY,
)


def _resources_set(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    if spec.partial:
        return
    for container in _containers(spec):
        if container.role == "ephemeral container":
            continue  # the API forbids resources on ephemeral containers
        with ctx.judging(container.label):
            resources = need(container.resources)
            missing = [
                f"{kind}.{what}"
                for kind in ("requests", "limits")
                for what in ("cpu", "memory")
                if not mapping(resources.get(kind)).get(what)
            ]
            if missing:
                ctx.violation(f"{container.label} lacks {', '.join(missing)}.")


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


def _image_pinned(subject: Subject, ctx: Ctx) -> None:
    spec = _spec(subject)
    for container in _containers(spec):
        with ctx.judging(container.label):
            image = need(container.image)
            if image is None and spec.partial:
                continue
            if not image_is_pinned(image or ""):
                ctx.violation(f"{container.label} image {image!r} is not pinned.")


def secret_name(name: str) -> bool:
    """`DB_PASSWORD`, `apiKey`, `client-secret`: yes; `POSTGRES_PASSWORD_FILE`, `AUTHOR`, `TOKEN_TTL_SECONDS`: no."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]
    if not words or words[-1] in NOT_SECRET_SUFFIXES:
        return False
    pairs: set[tuple[str, ...]] = {*itertools.pairwise(words), *((w,) for w in words)}
    return any(w in SECRET_WORDS for w in words) or bool(pairs & SECRET_PAIRS)


def secret_value(value: str) -> str | None:
    """What in a literal value is a credential: a URL's password, a PEM private key, an AWS key id."""
    if URL_CREDENTIALS.search(value):
        return "a URL with a password"
    if PEM_PRIVATE_KEY.search(value):
        return "a private key"
    if AWS_ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    return None


NO_PLAIN_SECRETS = Rule(
    "kubernetes-config-no-plaintext-secrets",
    "Secret values belong in Secrets: not in ConfigMaps or literal env values (by name or by content).",
    Severity.HIGH,
    "Put the value in a kubernetes Secret (from a Pulumi secret) and use valueFrom.secretKeyRef (or a mounted "
    "file and *_FILE).",
    Category.SECURITY,
)


def _no_plain_secrets(subject: Subject, ctx: Ctx) -> None:
    if subject.kind == "ConfigMap":
        for key, value in mapping(subject.get("data")).items():
            found = secret_value(str(value))
            if secret_name(str(key)) or found:
                ctx.violation(f"ConfigMap key {key!r} {'holds ' + found if found else 'looks like a secret'}.")
        return
    for container in _containers(_spec(subject)):
        with ctx.judging(container.label):
            for variable in need(container.env):
                if not variable.literal:
                    continue
                name = need(variable.name)
                value = variable.value
                found = secret_value(value) if isinstance(value, str) else None
                if found:
                    ctx.violation(f"{container.label} sets {name} to {found}.")
                elif secret_name(name) and value is not None:
                    ctx.violation(f"{container.label} sets {name} as a literal.")


PVC_RETAINED = Rule(
    "kubernetes-statefulset-volumes-retained",
    "StatefulSets must keep their volumes when deleted or scaled down.",
    Severity.HIGH,
    "Set persistentVolumeClaimRetentionPolicy whenDeleted and whenScaled to Retain.",
    Category.SECURITY,
)


def _pvc_retained(subject: Subject, ctx: Ctx) -> None:
    spec = mapping(subject.get("spec"))
    policy = mapping(spec.get("persistentVolumeClaimRetentionPolicy"))
    if not spec.get("volumeClaimTemplates") and not policy:
        return
    for key in ("whenDeleted", "whenScaled"):
        if policy.get(key, "Retain") != "Retain":
            ctx.violation(f"persistentVolumeClaimRetentionPolicy.{key} is {policy.get(key)}; data would be deleted.")


# -- Namespaces and exposure ------------------------------------------------------------------


def _labelled_data(subject: Subject) -> bool:
    labels = subject.labels
    return not isinstance(labels, Unknown) and labels.get(DATA_TIER_LABEL) == "data"


RESTRICTED_NAMESPACE = Rule(
    "kubernetes-namespace-restricted-pod-security",
    "Data namespaces must enforce the restricted Pod Security Standard.",
    Severity.HIGH,
    "Label the namespace pod-security.kubernetes.io/enforce=restricted (DataNamespace does).",
    Category.SECURITY,
)


def _restricted_namespace(subject: Subject, ctx: Ctx) -> None:
    name = need(subject.metadata_name)
    if name not in ctx.settings.data_namespaces and not _labelled_data(subject):
        return
    level = mapping(need(subject.labels)).get(PSA_ENFORCE)
    if level != "restricted":
        ctx.violation(f"namespace {name} enforces {level or 'no'} pod security, not restricted.")


DATA_LISTED = Rule(
    "kubernetes-namespace-data-listed",
    "Every namespace labelled as a data namespace must be listed in the pack config's dataNamespaces.",
    Severity.HIGH,
    "Add the namespace to sophia-pack-stack-config.dataNamespaces in policies/config/<stack>.json, so the rules "
    "that run before a resource is created know it.",
    Category.SECURITY,
)


def _data_listed(view: StackView, ctx: Ctx) -> None:
    def check(namespace: Subject) -> None:
        name = need(namespace.metadata_name)
        if _labelled_data(namespace) and name not in ctx.settings.data_namespaces:
            ctx.violation(f"namespace {name} is labelled {DATA_TIER_LABEL}=data but not listed.", namespace.urn)

    ctx.each([s for s in view.custom if s.kind == "Namespace"], check)


def _data_namespaces(view: StackView, ctx: Ctx) -> set[str]:
    """Listed or labelled data namespaces that this stack puts something in."""
    labelled = {str(s.metadata_name) for s in view.custom if s.kind == "Namespace" and _labelled_data(s)}
    declared = {str(s.metadata_name) for s in view.custom if s.kind == "Namespace"}
    used = declared | {ns for s in view.custom if s.kind and isinstance(ns := s.namespace, str)}
    return (set(ctx.settings.data_namespaces) | labelled) & used


DEFAULT_DENY = Rule(
    "kubernetes-namespace-default-deny",
    "Each data namespace needs a default-deny ingress NetworkPolicy, and no policy in it may admit everyone or "
    "the internet.",
    Severity.HIGH,
    "Add a NetworkPolicy with podSelector {} and no ingress rules (policyTypes [Ingress, Egress]); allow only the "
    "ports each store needs, from named pods and namespaces.",
    Category.SECURITY,
)


def _default_deny(view: StackView, ctx: Ctx) -> None:
    covered: set[str] = set()
    policies = [s for s in view.custom if s.kind == "NetworkPolicy"]
    data = _data_namespaces(view, ctx)

    def check(subject: Subject) -> None:
        policy = subject.network_policy
        assert policy is not None
        namespace = need(policy.namespace)
        if need(policy.selects_all_pods) and need(policy.denies_ingress):
            covered.add(namespace)
        if namespace in data:
            for opening in need(policy.admits):
                ctx.violation(f"namespace {namespace}: {subject.name} {opening}.", subject.urn)

    ctx.each(policies, check)
    for namespace in sorted(data - covered):
        ctx.violation(f"namespace {namespace} has no default-deny NetworkPolicy.")


NO_PUBLIC_STORE = Rule(
    "kubernetes-service-no-public-datastore",
    "No data store may be reachable from outside the cluster: no LoadBalancer open to the internet, NodePort, "
    "externalIPs or Ingress in front of one.",
    Severity.CRITICAL,
    "Use a ClusterIP Service; where another region must connect (replication), use a LoadBalancer with "
    "loadBalancerSourceRanges set to that region's egress addresses.",
    Category.SECURITY,
)


def _data_ports(ports: Iterable[int]) -> list[int]:
    return sorted({p for p in ports if any(low <= p <= high for low, high in DATA_PORTS)})


def _ingress_ports(subject: Subject) -> list[int]:
    spec = mapping(subject.get("spec"))
    backends = [dig(spec, "defaultBackend", "service", "port", "number"), dig(spec, "backend", "servicePort")]
    for rule in items(spec.get("rules")):
        for path in items(dig(rule, "http", "paths")):
            backends += [dig(path, "backend", "service", "port", "number"), dig(path, "backend", "servicePort")]
    return [int(p) for p in (number(b) for b in backends) if p is not None]


def _no_public_store(subject: Subject, ctx: Ctx) -> None:
    exposure = subject.exposure
    assert exposure is not None
    openings = need(exposure.openings)
    if not openings:
        return
    reasons: list[str] = []
    namespace = need(exposure.namespace)
    if namespace in ctx.settings.data_namespaces:
        reasons.append(f"in data namespace {namespace}")
    if exposure.kind == SERVICE_KIND:
        if mapping(need(exposure.selector)).get(DATA_TIER_LABEL) == "data":
            reasons.append(f"selecting {DATA_TIER_LABEL}=data pods")
        ports = _data_ports(need(exposure.ports))
    else:
        ports = _data_ports(_ingress_ports(subject))
    if ports:
        reasons.append(f"on data port {', '.join(map(str, ports))}")
    if reasons:
        ctx.violation(f"{exposure.kind} {' and '.join(reasons)} is reachable through {'; '.join(openings)}.")


# -- RBAC, disruption budgets, bare pods, Helm -------------------------------------------------

RBAC = Rule(
    "kubernetes-rbac-role-no-escalation",
    "Roles must not use wildcards or grant escalation (bind, escalate, impersonate, exec into pods, node proxy, "
    "reading every secret, admission webhooks, approving certificates, minting tokens, writing RBAC), and no "
    "binding may grant cluster-admin.",
    Severity.HIGH,
    "Grant named verbs on named resources; list an operator's role in reviewedRoles only after reviewing it.",
    Category.SECURITY,
    config={
        "reviewedRoles": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Roles, ClusterRoles and bindings (metadata.name) reviewed and accepted as they are.",
        }
    },
)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "*"})
READ_VERBS = frozenset({"get", "list", "watch", "*"})


def _grants(rule: Mapping[str, Any], cluster: bool) -> list[str]:
    verbs = {str(v).lower() for v in items(rule.get("verbs"))}
    resources = {str(r).lower() for r in items(rule.get("resources"))}
    groups = {str(g) for g in items(rule.get("apiGroups"))}
    found = [
        f"'*' {what}"
        for what, values in (("verbs", verbs), ("resources", resources), ("apiGroups", groups))
        if "*" in values
    ]
    found += [f"verb {v}" for v in sorted(verbs & {"bind", "escalate", "impersonate"})]
    for resource, verbs_needed, what in (
        ("pods/exec", WRITE_VERBS | {"get"}, "exec into pods"),
        ("pods/attach", WRITE_VERBS | {"get"}, "attach to pods"),
        ("nodes/proxy", READ_VERBS | WRITE_VERBS, "proxy to nodes"),
        ("serviceaccounts/token", WRITE_VERBS, "mint service account tokens"),
        ("certificatesigningrequests/approval", WRITE_VERBS, "approve certificates"),
        ("mutatingwebhookconfigurations", WRITE_VERBS, "change admission webhooks"),
        ("validatingwebhookconfigurations", WRITE_VERBS, "change admission webhooks"),
        ("roles", WRITE_VERBS, "write RBAC"),
        ("rolebindings", WRITE_VERBS, "write RBAC"),
        ("clusterroles", WRITE_VERBS, "write RBAC"),
        ("clusterrolebindings", WRITE_VERBS, "write RBAC"),
    ):
        if resource in resources and verbs & verbs_needed:
            found.append(what)
    if cluster and "secrets" in resources and verbs & READ_VERBS:
        found.append("read every secret")
    return sorted(set(found))


def _rbac(subject: Subject, ctx: Ctx) -> None:
    name = need(subject.metadata_name)
    if name in ctx.config["reviewedRoles"]:
        return
    if subject.kind in ("RoleBinding", "ClusterRoleBinding"):
        if dig(subject.props, "roleRef", "name") == "cluster-admin":
            ctx.violation(f"{subject.kind} {name} grants cluster-admin.")
        return
    cluster = subject.kind == "ClusterRole"
    for index, rule in enumerate(items(subject.get("rules"))):
        granted = _grants(mapping(rule), cluster)
        if granted:
            ctx.violation(f"{subject.kind} {name} rule {index} grants {', '.join(granted)}.")


PDB = Rule(
    "kubernetes-poddisruptionbudget-allows-eviction",
    "PodDisruptionBudgets must allow at least one voluntary disruption (node drains must be able to proceed).",
    Severity.HIGH,
    "Use maxUnavailable: 1 (or minAvailable below the replica count), never maxUnavailable 0 or minAvailable 100%.",
    Category.SECURITY,
)


def _pdb(subject: Subject, ctx: Ctx) -> None:
    spec = mapping(subject.get("spec"))
    unavailable, available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if unavailable is not None and str(unavailable).strip() in ("0", "0.0", "0%"):
        ctx.violation(f"maxUnavailable is {unavailable}: no pod may ever be evicted.")
    if available is not None and str(available).strip() == "100%":
        ctx.violation("minAvailable is 100%: no pod may ever be evicted.")


BARE_POD = Rule(
    "kubernetes-pod-no-bare-pods",
    "Pods belong to a controller (Deployment, StatefulSet, Job): a bare Pod is not rescheduled when its node goes.",
    Severity.HIGH,
    "Wrap the pod template in a Deployment, StatefulSet or Job.",
    Category.HYGIENE,
)


def _bare_pod(subject: Subject, ctx: Ctx) -> None:
    ctx.violation("a bare Pod.")


HELM = Rule(
    "kubernetes-helm-release-chart-approved",
    "A Helm release must install a reviewed chart at a pinned version: its objects are invisible to the pack.",
    Severity.HIGH,
    "Pin version to an exact chart version, review what the chart renders with these values, and add it to "
    "approvedCharts in the policy config.",
    Category.SECURITY,
    config={
        "approvedCharts": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": {},
            "description": "chart name -> exact versions reviewed.",
        }
    },
)
_VERSION_RANGE = re.compile(r"[\^~*xX><=|, ]")


def _helm(subject: Subject, ctx: Ctx) -> None:
    chart = text(subject.get("chart")) or ""
    name = chart.rsplit("/", 1)[-1]
    version = text(subject.get("version"))
    if not version or _VERSION_RANGE.search(version):
        ctx.violation(f"chart {chart} is not pinned to one version ({version or 'no version'}).")
        return
    approved = ctx.config["approvedCharts"].get(name, [])
    if version not in approved:
        ctx.violation(f"chart {name} {version} is not approved ({', '.join(approved) or 'no version approved'}).")


def _of_kind(*kinds: str) -> Any:
    wanted = frozenset(kinds)
    return lambda subject: subject.kind in wanted


POLICIES = [
    NO_PRIVILEGED.resource(_is_workload, _no_privileged),
    CAPABILITIES.resource(_is_workload, _capabilities),
    HOST_PATH.resource(_is_workload, _host_path),
    HOST_PORT.resource(_is_workload, _host_port),
    NON_ROOT.resource(_is_workload, _non_root),
    SECCOMP.resource(_is_workload, _seccomp),
    READ_ONLY_ROOT.resource(_is_workload, _read_only_root),
    RESOURCES_SET.resource(_is_workload, _resources_set),
    IMAGE_PINNED.resource(_is_workload, _image_pinned),
    NO_PLAIN_SECRETS.resource(lambda s: s.kind == "ConfigMap" or _is_workload(s), _no_plain_secrets),
    PVC_RETAINED.resource(_of_kind("StatefulSet"), _pvc_retained),
    RESTRICTED_NAMESPACE.resource(_of_kind("Namespace"), _restricted_namespace),
    DATA_LISTED.stack(_data_listed),
    DEFAULT_DENY.stack(_default_deny),
    NO_PUBLIC_STORE.resource(_of_kind(SERVICE_KIND, INGRESS_KIND), _no_public_store),
    RBAC.resource(_of_kind("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"), _rbac),
    PDB.resource(_of_kind("PodDisruptionBudget"), _pdb),
    BARE_POD.resource(
        lambda s: s.resource_type.startswith("kubernetes:core/") and s.resource_type.endswith(":Pod"), _bare_pod
    ),
    HELM.resource([HELM_RELEASE], _helm),
]
