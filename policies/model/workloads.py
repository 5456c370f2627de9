"""Every Kubernetes object that runs containers, as one `PodSpec`.

Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, Pod and
PodTemplate, in any API group or version, their `*Patch` variants, and custom resources that carry
a standard pod template (`spec.template.spec`, KEDA's `spec.jobTargetRef.template.spec`). Init and
ephemeral containers are containers like the others (an init container with `restartPolicy:
Always` is a sidecar). The pod carries its labels (a Pod's own, else its template's) and where it
may be scheduled (`nodeSelector` and required node affinity). Kubernetes defaults are applied where
they decide a verdict: an omitted `allowPrivilegeEscalation` is true, a container inherits the pod's
`runAsNonRoot`, `runAsUser` and `seccompProfile`.

A `*Patch` (server-side apply of a few fields onto a live object) is *partial*: rules judge the
values it sets, not the ones it leaves to the live object. Helm releases are not here: their
values are opaque to the pack (see `rules/kubernetes.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.model.values import Unknown, dig, flag, items, mapping, number, read, read_key, text

# The path to the pod spec by kind; any group and version.
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Custom resources that embed a pod template where the built-in controllers do.
TEMPLATE_PATHS = (("spec", "template", "spec"), ("spec", "jobTargetRef", "template", "spec"))
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
CONTAINER_LISTS = (
    ("initContainers", "init container"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeral container"),
)


def kubernetes_kind(resource_type: str) -> tuple[str, bool] | None:
    """(`Kind`, is a patch) of a `kubernetes:<group>/<version>:<Kind>` token."""
    if not resource_type.startswith("kubernetes:"):
        return None
    kind = resource_type.rsplit(":", 1)[-1]
    if kind.endswith("Patch"):
        return kind[: -len("Patch")], True
    return kind, False


@dataclass(frozen=True)
class EnvVar:
    name: str | Unknown
    literal: bool
    """A `value` written into the spec (not `valueFrom`)."""
    value: Any
    """The literal value (`Unknown` when it comes from a resource not created yet), None for `valueFrom`."""


@dataclass(frozen=True)
class Container:
    """One container with the pod's settings it inherits applied."""

    name: str
    role: str
    """`container`, `init container` or `ephemeral container`."""
    image: str | Unknown | None
    privileged: bool | Unknown | None
    allow_privilege_escalation: bool | Unknown | None
    """As written; None when omitted (Kubernetes then allows escalation)."""
    capabilities_added: frozenset[str] | Unknown
    capabilities_dropped: frozenset[str] | Unknown
    run_as_non_root: bool | Unknown | None
    run_as_user: float | Unknown | None
    read_only_root_filesystem: bool | Unknown | None
    seccomp: str | Unknown | None
    """The effective seccomp profile type (container's, else the pod's)."""
    host_ports: tuple[int, ...] | Unknown
    resources: Mapping[str, Any] | Unknown
    env: tuple[EnvVar, ...] | Unknown
    probes: frozenset[str] | Unknown
    """The probes it sets (`readinessProbe`, `livenessProbe`, `startupProbe`)."""
    restart_policy: str | Unknown | None
    """An init container's `restartPolicy` (`Always`: a sidecar, running beside the containers)."""

    @property
    def label(self) -> str:
        return f"{self.role} {self.name}"

    def escalation_allowed(self) -> bool | Unknown:
        """Kubernetes allows escalation unless it is set false (and it always does when privileged or SYS_ADMIN)."""
        for value in (self.privileged, self.capabilities_added, self.allow_privilege_escalation):
            if isinstance(value, Unknown):
                return value
        assert not isinstance(self.capabilities_added, Unknown)
        if self.privileged is True or "SYS_ADMIN" in self.capabilities_added:
            return True
        return self.allow_privilege_escalation is not False


NodeRequirement = tuple[str, str, tuple[str, ...]]
"""(key, operator, values) of a node selector requirement."""


@dataclass(frozen=True)
class PodSpec:
    kind: str
    partial: bool
    """A patch: only the fields it sets are judged."""
    host_network: bool | Unknown | None
    host_pid: bool | Unknown | None
    host_ipc: bool | Unknown | None
    host_paths: tuple[tuple[str, str], ...] | Unknown
    """(volume name, host path)."""
    containers: tuple[Container, ...] | Unknown
    labels: Mapping[str, Any] | Unknown
    """The pod's labels: a Pod's own, else its template's `metadata.labels`."""
    node_selector: Mapping[str, Any] | Unknown
    node_terms: tuple[tuple[NodeRequirement, ...], ...] | Unknown
    """Required node affinity: the pod fits a node that meets every requirement of any one term."""

    def node_label_values(self, key: str) -> frozenset[str] | Unknown | None:
        """The values node label `key` may have on a node this pod can be scheduled to (nodeSelector and
        required node affinity, both applying); None when neither constrains it to named values."""
        if isinstance(self.node_selector, Unknown):
            return self.node_selector
        if isinstance(self.node_terms, Unknown):
            return self.node_terms
        selected = self.node_selector.get(key)
        allowed: frozenset[str] | None = None if selected is None else frozenset({str(selected)})
        if self.node_terms:
            by_terms: set[str] = set()
            for term in self.node_terms:
                values = [frozenset(v) for k, op, v in term if k == key and op == "In"]
                if not values:
                    return allowed  # a term that leaves the label free: any value
                by_terms |= frozenset.intersection(*values)
            allowed = frozenset(by_terms) if allowed is None else allowed & by_terms
        return allowed


def _capabilities(context: Mapping[str, Any], key: str) -> frozenset[str]:
    names = (str(c).upper() for c in items(dig(context, "capabilities", key)))
    return frozenset(n[4:] if n.startswith("CAP_") else n for n in names)


def _container(spec: Mapping[str, Any], raw: Any, role: str) -> Container:
    container = mapping(raw)
    pod = read(lambda: mapping(spec.get("securityContext")))
    own = read(lambda: mapping(container.get("securityContext")))

    def inherited(key: str) -> Any:
        if isinstance(own, Unknown):
            return own
        value = read(lambda: own.get(key))
        if value is None:
            value = pod if isinstance(pod, Unknown) else read(lambda: pod.get(key))
        return value

    def own_field(fn: Any) -> Any:
        return own if isinstance(own, Unknown) else read(lambda: fn(own))

    seccomp = inherited("seccompProfile")
    seccomp_type = seccomp if isinstance(seccomp, Unknown) else read(lambda: text(mapping(seccomp).get("type")))
    non_root = inherited("runAsNonRoot")
    user = inherited("runAsUser")

    def host_ports() -> tuple[int, ...]:
        ports = (number(mapping(p).get("hostPort")) for p in items(container.get("ports")))
        return tuple(int(p) for p in ports if p)

    def env() -> tuple[EnvVar, ...]:
        found = []
        for entry in items(container.get("env")):
            variable = mapping(entry)
            literal = "valueFrom" not in variable
            found.append(
                EnvVar(
                    _name(read_key(variable, "name")),
                    literal,
                    read_key(variable, "value") if literal else None,
                )
            )
        return tuple(found)

    def probes() -> frozenset[str]:
        return frozenset(p for p in PROBES if container.get(p))

    return Container(
        name=str(read(lambda: container.get("name"))),
        role=role,
        image=read(lambda: text(container.get("image"))),
        privileged=own_field(lambda c: flag(c.get("privileged"))),
        allow_privilege_escalation=own_field(lambda c: flag(c.get("allowPrivilegeEscalation"))),
        capabilities_added=own_field(lambda c: _capabilities(c, "add")),
        capabilities_dropped=own_field(lambda c: _capabilities(c, "drop")),
        run_as_non_root=non_root if isinstance(non_root, Unknown) else flag(non_root),
        run_as_user=user if isinstance(user, Unknown) else number(user),
        read_only_root_filesystem=own_field(lambda c: flag(c.get("readOnlyRootFilesystem"))),
        seccomp=seccomp_type,
        host_ports=read(host_ports),
        resources=read(lambda: mapping(container.get("resources"))),
        env=read(env),
        probes=read(probes),
        restart_policy=read(lambda: text(container.get("restartPolicy"))),
    )


def _at(props: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    return read(lambda: dig(props, *path))


def _name(value: Any) -> str | Unknown:
    return value if isinstance(value, Unknown) else str(value)


def _pod_spec_node(kind: str, props: Mapping[str, Any]) -> tuple[Mapping[str, Any] | Unknown | None, tuple[str, ...]]:
    """The pod spec and its path (for a built-in kind its path even when the spec is missing)."""
    paths = (POD_SPEC_PATHS[kind],) if kind in POD_SPEC_PATHS else TEMPLATE_PATHS
    for path in paths:
        node = _at(props, path)
        if isinstance(node, Unknown):
            return node, path
        if isinstance(node, Mapping) and (kind in POD_SPEC_PATHS or "containers" in node):
            return node, path
    return None, paths[0]


def _pod_labels(props: Mapping[str, Any], spec_path: tuple[str, ...]) -> Mapping[str, Any] | Unknown:
    # The pod's metadata sits beside its spec: `metadata` of a Pod, `<template>.metadata` of the others.
    return read(lambda: mapping(dig(props, *spec_path[:-1], "metadata", "labels")))


def _node_terms(spec: Mapping[str, Any]) -> tuple[tuple[NodeRequirement, ...], ...]:
    required = dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    terms = []
    for term in items(mapping(required).get("nodeSelectorTerms")):
        terms.append(
            tuple(
                (
                    str(mapping(e).get("key")),
                    str(mapping(e).get("operator")),
                    tuple(str(v) for v in items(mapping(e).get("values"))),
                )
                for e in items(mapping(term).get("matchExpressions"))
            )
        )
    return tuple(terms)


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> PodSpec | Unknown | None:
    """The pod the object runs, or None when it runs none; `Unknown` if the whole spec is not known."""
    kind_patch = kubernetes_kind(resource_type)
    if kind_patch is None:
        return None
    kind, partial = kind_patch
    node, path = _pod_spec_node(kind, props)
    if node is None:
        # A built-in workload without its spec block still runs a pod: judge it as empty (it fails
        # the checks that need settings) unless it is a patch.
        if kind not in POD_SPEC_PATHS:
            return None
        node = {}
    if isinstance(node, Unknown):
        return node
    spec = node

    def containers() -> tuple[Container, ...]:
        found: list[Container] = []
        for key, role in CONTAINER_LISTS:
            found.extend(_container(spec, c, role) for c in items(spec.get(key)))
        return tuple(found)

    def host_paths() -> tuple[tuple[str, str], ...]:
        return tuple(
            (str(mapping(v).get("name")), str(dig(v, "hostPath", "path")))
            for v in items(spec.get("volumes"))
            if mapping(v).get("hostPath") is not None
        )

    return PodSpec(
        kind=kind,
        partial=partial,
        host_network=read(lambda: flag(spec.get("hostNetwork"))),
        host_pid=read(lambda: flag(spec.get("hostPID"))),
        host_ipc=read(lambda: flag(spec.get("hostIPC"))),
        host_paths=read(host_paths),
        containers=read(containers),
        labels=_pod_labels(props, path),
        node_selector=read(lambda: mapping(spec.get("nodeSelector"))),
        node_terms=read(lambda: _node_terms(spec)),
    )
