"""Kubernetes rules, on objects written with pulumi-kubernetes's own classes: every kind that runs a pod
(and its patch, and a custom resource with a pod template) is judged the same way; a compliant
baseline passes and each broken property fails."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from tests.policies.helpers import DELETE, evaluation, k8s, messages, program, skipped, with_
from tools.harness import RegisteredResource, StackRun

SECURE: dict[str, Any] = {
    "allow_privilege_escalation": False,
    "capabilities": {"drop": ["ALL"]},
    "read_only_root_filesystem": True,
    "run_as_non_root": True,
    "run_as_user": 10001,
}
CONTAINER: dict[str, Any] = {
    "name": "api",
    "image": "ghcr.io/sophia/api:1.4.2",
    "security_context": SECURE,
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "env": [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "value_from": {"secret_key_ref": {"name": "db", "key": "password"}}},
        {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/db/password"},
    ],
}
POD: dict[str, Any] = {"security_context": {"seccomp_profile": {"type": "RuntimeDefault"}}, "containers": [CONTAINER]}
LABELS = {"app": "api"}
META = {"name": "api", "namespace": "sophia-apps", "labels": LABELS}


def template(pod: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": LABELS}, "spec": pod}


# Every object that runs a pod, built from a pod spec.
KINDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Deployment": lambda pod: k8s.apps.v1.Deployment(
        "w", metadata=META, spec={"selector": {"match_labels": LABELS}, "template": template(pod)}
    ),
    "StatefulSet": lambda pod: k8s.apps.v1.StatefulSet(
        "w",
        metadata=META,
        spec={"service_name": "api", "selector": {"match_labels": LABELS}, "template": template(pod)},
    ),
    "DaemonSet": lambda pod: k8s.apps.v1.DaemonSet(
        "w", metadata=META, spec={"selector": {"match_labels": LABELS}, "template": template(pod)}
    ),
    "ReplicaSet": lambda pod: k8s.apps.v1.ReplicaSet(
        "w", metadata=META, spec={"selector": {"match_labels": LABELS}, "template": template(pod)}
    ),
    "ReplicationController": lambda pod: k8s.core.v1.ReplicationController(
        "w", metadata=META, spec={"selector": LABELS, "template": template(pod)}
    ),
    "Job": lambda pod: k8s.batch.v1.Job(
        "w", metadata=META, spec={"template": template(with_(pod, restart_policy="Never"))}
    ),
    "CronJob": lambda pod: k8s.batch.v1.CronJob(
        "w",
        metadata=META,
        spec={
            "schedule": "0 3 * * *",
            "job_template": {"spec": {"template": template(with_(pod, restart_policy="Never"))}},
        },
    ),
    "Pod": lambda pod: k8s.core.v1.Pod("w", metadata=META, spec=pod),
    "PodTemplate": lambda pod: k8s.core.v1.PodTemplate("w", metadata=META, template=template(pod)),
    "Rollout (custom resource)": lambda pod: k8s.apiextensions.CustomResource(
        "w",
        api_version="argoproj.io/v1alpha1",
        kind="Rollout",
        metadata=META,
        spec={"selector": {"matchLabels": LABELS}, "template": {"metadata": {"labels": LABELS}, "spec": camel(pod)}},
    ),
}


def camel(value: Any) -> Any:
    """A custom resource's spec is passed through untyped: write it as the API does."""
    if isinstance(value, dict):
        return {_camel(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _camel(key: str) -> str:
    if key in ("host_pid", "host_ipc"):
        return "host" + key[5:].upper()
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def pod_with(container: dict[str, Any] | None = None, **pod_changes: Any) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    if container is not None:
        pod["containers"] = [container]
    return with_(pod, **pod_changes)


def secure(**changes: Any) -> dict[str, Any]:
    return with_(CONTAINER, security_context=with_(SECURE, **changes))


BREAKS: list[tuple[str, dict[str, Any], str]] = [
    ("kubernetes-workload-no-privileged", pod_with(secure(privileged=True)), "container api is privileged."),
    (
        "kubernetes-workload-no-privileged",
        pod_with(secure(allow_privilege_escalation=DELETE)),
        "container api allows privilege escalation (allowPrivilegeEscalation unset",
    ),
    ("kubernetes-workload-no-privileged", pod_with(host_network=True), "hostNetwork is true."),
    ("kubernetes-workload-no-privileged", pod_with(host_pid=True), "hostPID is true."),
    (
        "kubernetes-workload-capabilities-dropped",
        pod_with(secure(capabilities={"add": ["SYS_ADMIN"], "drop": ["ALL"]})),
        "container api adds capabilities SYS_ADMIN.",
    ),
    (
        "kubernetes-workload-capabilities-dropped",
        pod_with(secure(capabilities={"add": ["CAP_NET_RAW"], "drop": ["ALL"]})),
        "container api adds capabilities NET_RAW.",
    ),
    (
        "kubernetes-workload-capabilities-dropped",
        pod_with(secure(capabilities=DELETE)),
        "container api does not drop ALL capabilities.",
    ),
    (
        "kubernetes-workload-no-host-path",
        pod_with(volumes=[{"name": "root", "host_path": {"path": "/"}}]),
        "volume root mounts host path /.",
    ),
    (
        "kubernetes-workload-no-host-port",
        pod_with(with_(CONTAINER, ports=[{"container_port": 8080, "host_port": 80}])),
        "container api binds host port 80.",
    ),
    ("kubernetes-workload-run-as-non-root", pod_with(secure(run_as_user=0)), "container api may run as root."),
    (
        "kubernetes-workload-run-as-non-root",
        pod_with(secure(run_as_non_root=DELETE, run_as_user=DELETE)),
        "container api may run as root.",
    ),
    (
        "kubernetes-workload-seccomp-profile",
        pod_with(security_context={"seccomp_profile": {"type": "Unconfined"}}),
        "container api runs without a seccomp profile (Unconfined).",
    ),
    (
        "kubernetes-workload-read-only-root-filesystem",
        pod_with(secure(read_only_root_filesystem=False)),
        "container api has a writable root filesystem.",
    ),
    (
        "kubernetes-workload-resources-set",
        pod_with(with_(CONTAINER, resources={"requests": {"cpu": "1"}})),
        "container api lacks requests.memory, limits.cpu, limits.memory.",
    ),
    (
        "kubernetes-workload-image-pinned",
        pod_with(with_(CONTAINER, image="ghcr.io/sophia/api:latest")),
        "container api image 'ghcr.io/sophia/api:latest' is not pinned.",
    ),
    (
        "kubernetes-workload-image-pinned",
        pod_with(with_(CONTAINER, image="localhost:5000/api")),
        "container api image 'localhost:5000/api' is not pinned.",
    ),
    (
        "kubernetes-config-no-plaintext-secrets",
        pod_with(with_(CONTAINER, env=[{"name": "REDIS_AUTH", "value": "hunter2"}])),
        "container api sets REDIS_AUTH as a literal.",
    ),
    (
        "kubernetes-config-no-plaintext-secrets",
        pod_with(with_(CONTAINER, env=[{"name": "DATABASE_URL", "value": "postgres://app:hunter2@db:5432/app"}])),
        "container api sets DATABASE_URL to a URL with a password.",
    ),
]
WORKLOAD_POLICIES = sorted({policy for policy, _, _ in BREAKS})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", WORKLOAD_POLICIES)
def test_a_compliant_pod_passes_in_every_kind(kind: str, policy: str) -> None:
    run = program(lambda: KINDS[kind](POD))
    assert messages(policy, run) == []
    assert skipped(policy, run) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("policy", "pod", "expected"), BREAKS, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BREAKS)])
def test_each_break_fails_in_every_kind(kind: str, policy: str, pod: dict[str, Any], expected: str) -> None:
    found = messages(policy, program(lambda: KINDS[kind](pod)))
    assert len(found) == 1, found
    assert found[0].startswith(expected)


def test_init_and_ephemeral_containers_are_containers() -> None:
    privileged = with_(CONTAINER, security_context=with_(SECURE, privileged=True))
    pod = pod_with(
        init_containers=[with_(privileged, name="init")],
        ephemeral_containers=[with_(privileged, name="debug", resources=DELETE)],
    )
    assert messages("kubernetes-workload-no-privileged", program(lambda: KINDS["Pod"](pod))) == [
        "init container init is privileged.",
        "ephemeral container debug is privileged.",
    ]


def test_pod_level_settings_cover_containers_without_their_own() -> None:
    container = with_(CONTAINER, security_context=with_(SECURE, run_as_non_root=DELETE, run_as_user=DELETE))
    pod = pod_with(container, security_context={"run_as_non_root": True, "seccomp_profile": {"type": "RuntimeDefault"}})
    assert messages("kubernetes-workload-run-as-non-root", program(lambda: KINDS["Deployment"](pod))) == []


def test_digest_pinned_image_passes() -> None:
    pod = pod_with(with_(CONTAINER, image="redis@sha256:" + "a" * 64))
    assert messages("kubernetes-workload-image-pinned", program(lambda: KINDS["Deployment"](pod))) == []


def patch(spec: dict[str, Any]) -> Any:
    return program(lambda: k8s.apps.v1.DeploymentPatch("w", metadata={"name": "api", "namespace": "apps"}, spec=spec))


def test_a_patch_is_judged_on_what_it_sets() -> None:
    image_only = {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/sophia/api:1.4.3"}]}}}
    for policy in WORKLOAD_POLICIES:
        assert messages(policy, patch(image_only)) == [], policy
    privileged = {"template": {"spec": {"containers": [{"name": "api", "security_context": {"privileged": True}}]}}}
    assert messages("kubernetes-workload-no-privileged", patch(privileged)) == ["container api is privileged."]
    host = {"template": {"spec": {"host_pid": True, "volumes": [{"name": "root", "host_path": {"path": "/"}}]}}}
    assert messages("kubernetes-workload-no-privileged", patch(host)) == ["hostPID is true."]
    assert messages("kubernetes-workload-no-host-path", patch(host)) == ["volume root mounts host path /."]


def test_an_unknown_field_is_reported_and_the_other_containers_judged() -> None:
    def build() -> None:
        image = k8s.core.v1.Namespace("ns").metadata.apply(lambda _: "ghcr.io/sophia/api:1.4.2")  # unknown in preview
        pending = with_(CONTAINER, name="pending", image=image)
        latest = with_(CONTAINER, name="latest", image="ghcr.io/sophia/api:latest")
        KINDS["Deployment"](pod_with(containers=[pending, latest]))

    run = program(build, first_preview=True)
    policy = "kubernetes-workload-image-pinned"
    assert messages(policy, run) == ["container latest image 'ghcr.io/sophia/api:latest' is not pinned."]
    assert len(skipped(policy, run)) == 1
    assert "container pending" in skipped(policy, run)[0]


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("DB_PASSWORD", "x", True),
        ("apiKey", "x", True),
        ("client-secret", "x", True),
        ("GITHUB_TOKEN", "x", True),
        ("POSTGRES_PASSWORD_FILE", "/run/secrets/pw", False),
        ("PGPASSFILE", "/run/secrets/pgpass", False),
        ("AUTHOR", "sophia", False),
        ("TOKEN_TTL_SECONDS", "3600", False),
        ("DATABASE_URL", "postgres://app@db:5432/app", False),
        ("TLS_KEY", "-----BEGIN PRIVATE KEY-----\nabc", True),
    ],
)
def test_secret_names_and_values(name: str, value: str, secret: bool) -> None:
    pod = pod_with(with_(CONTAINER, env=[{"name": name, "value": value}]))
    found = messages("kubernetes-config-no-plaintext-secrets", program(lambda: KINDS["Deployment"](pod)))
    assert bool(found) is secret, found


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"REDIS_PASSWORD": "x"}, "ConfigMap key 'REDIS_PASSWORD' looks like a secret."),
        ({"qdrant-api-key": "x"}, "ConfigMap key 'qdrant-api-key' looks like a secret."),
        ({"tls.pem": "-----BEGIN RSA PRIVATE KEY-----\nabc"}, "ConfigMap key 'tls.pem' holds a private key."),
        ({"DSN": "redis://:hunter2@redis:6379/0"}, "ConfigMap key 'DSN' holds a URL with a password."),
    ],
)
def test_config_maps(data: dict[str, str], expected: str) -> None:
    policy = "kubernetes-config-no-plaintext-secrets"
    plain = {"LOG_LEVEL": "info", "ca.crt": "CERT", "PGPASSFILE": "/etc/pgpass"}
    assert messages(policy, program(lambda: k8s.core.v1.ConfigMap("cm", data=plain))) == []
    assert messages(policy, program(lambda: k8s.core.v1.ConfigMap("cm", data=data))) == [expected]


# -- Exposure ---------------------------------------------------------------------------------

POLICY_EXPOSURE = "kubernetes-service-no-public-datastore"


def service(namespace: str | None, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> Any:
    metadata: dict[str, Any] = {"name": "svc", "annotations": annotations}
    if namespace is not None:
        metadata["namespace"] = namespace
    return program(lambda: k8s.core.v1.Service("svc", metadata=metadata, spec=spec))


PG = {"ports": [{"name": "pg", "port": 5432}], "selector": {"cnpg.io/cluster": "postgres"}}
API = {"ports": [{"name": "http", "port": 443, "target_port": 8443}], "selector": {"app": "api"}}


@pytest.mark.parametrize(
    ("namespace", "spec", "annotations", "exposed"),
    [
        ("sophia-data", PG, None, False),
        ("sophia-apps", {**API, "type": "LoadBalancer"}, None, False),
        (
            "sophia-data",
            {**PG, "type": "LoadBalancer", "load_balancer_source_ranges": ["198.51.100.10/32"]},
            None,
            False,
        ),
        (
            "sophia-data",
            {**PG, "type": "LoadBalancer"},
            {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
            False,
        ),
        ("sophia-data", {**PG, "type": "LoadBalancer"}, None, True),
        ("sophia-data", {**PG, "type": "NodePort"}, None, True),
        ("sophia-data", {**PG, "external_ips": ["203.0.113.7"]}, None, True),
        (None, {**PG, "type": "LoadBalancer"}, None, True),
        ("sophia-apps", {**PG, "type": "NodePort"}, None, True),
        ("sophia-apps", {**API, "type": "NodePort", "selector": {"sophia.ai/tier": "data"}}, None, True),
        (
            "sophia-data",
            {**PG, "type": "LoadBalancer", "load_balancer_source_ranges": ["0.0.0.0/1", "128.0.0.0/1"]},
            None,
            True,
        ),
    ],
    ids=[
        "cluster-ip",
        "public-api",
        "replication-sources",
        "internal-lb",
        "lb-no-sources",
        "node-port",
        "external-ips",
        "no-namespace-data-port",
        "other-namespace-data-port",
        "data-selector",
        "split-internet",
    ],
)
def test_services(
    namespace: str | None, spec: dict[str, Any], annotations: dict[str, str] | None, exposed: bool
) -> None:
    found = messages(POLICY_EXPOSURE, service(namespace, spec, annotations))
    assert bool(found) is exposed, found


def test_an_ingress_in_front_of_a_store() -> None:
    def ingress(namespace: str, port: int) -> Any:
        backend = {"service": {"name": "svc", "port": {"number": port}}}
        rule = {"host": "x.sophia.ai", "http": {"paths": [{"path": "/", "path_type": "Prefix", "backend": backend}]}}
        return program(
            lambda: k8s.networking.v1.Ingress(
                "ing", metadata={"name": "ing", "namespace": namespace}, spec={"rules": [rule]}
            )
        )

    assert messages(POLICY_EXPOSURE, ingress("sophia-apps", 443)) == []
    assert len(messages(POLICY_EXPOSURE, ingress("sophia-data", 443))) == 1
    assert len(messages(POLICY_EXPOSURE, ingress("sophia-apps", 6379))) == 1


def test_the_data_namespaces_come_from_the_pack_config() -> None:
    spec = {**API, "type": "LoadBalancer"}
    assert messages(POLICY_EXPOSURE, service("vectors", spec)) == []
    assert len(messages(POLICY_EXPOSURE, service("vectors", spec), data_namespaces=["vectors"])) == 1


NAMESPACE_OK = {
    "name": "sophia-data",
    "labels": {"sophia.ai/tier": "data", "pod-security.kubernetes.io/enforce": "restricted"},
}
DENY = {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]}


def namespace_stack(*policies: dict[str, Any], metadata: dict[str, Any] | None = None) -> Any:
    def build() -> None:
        k8s.core.v1.Namespace("ns", metadata=metadata or NAMESPACE_OK)
        for index, spec in enumerate(policies):
            k8s.networking.v1.NetworkPolicy(
                f"np-{index}", metadata={"name": f"np-{index}", "namespace": "sophia-data"}, spec=spec
            )

    return program(build)


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ((DENY,), []),
        (({"pod_selector": {}},), []),  # policyTypes omitted: Ingress
        (({"pod_selector": {}, "ingress": []},), []),
        ((), ["namespace sophia-data has no default-deny NetworkPolicy."]),
        (
            ({"pod_selector": {}, "policy_types": ["Egress"]},),
            ["namespace sophia-data has no default-deny NetworkPolicy."],
        ),
        (
            ({"pod_selector": {"match_labels": {"app": "redis"}}, "policy_types": ["Ingress"]},),
            ["namespace sophia-data has no default-deny NetworkPolicy."],
        ),
        (
            (DENY, {"pod_selector": {}, "ingress": [{"from_": [{"ip_block": {"cidr": "0.0.0.0/0"}}]}]}),
            ["namespace sophia-data: np-1 ingress rule 0 admits 0.0.0.0/0 (the whole internet)."],
        ),
        (
            (DENY, {"pod_selector": {}, "ingress": [{"ports": [{"port": 6379}]}]}),
            ["namespace sophia-data: np-1 ingress rule 0 admits every source."],
        ),
        ((DENY, {"pod_selector": {}, "ingress": [{"from_": [{"ip_block": {"cidr": "10.40.0.0/16"}}]}]}), []),
    ],
    ids=[
        "deny",
        "deny-types-omitted",
        "deny-empty-ingress",
        "none",
        "egress-only",
        "selective",
        "allow-internet-beside",
        "allow-everyone-beside",
        "allow-vpc-beside",
    ],
)
def test_default_deny(policies: tuple[dict[str, Any], ...], expected: list[str]) -> None:
    assert messages("kubernetes-namespace-default-deny", namespace_stack(*policies)) == expected


def test_a_labelled_data_namespace_needs_default_deny_and_a_listing() -> None:
    labelled = {
        "name": "vectors",
        "labels": {"sophia.ai/tier": "data", "pod-security.kubernetes.io/enforce": "restricted"},
    }
    run = program(lambda: k8s.core.v1.Namespace("ns", metadata=labelled))
    assert messages("kubernetes-namespace-default-deny", run) == [
        "namespace vectors has no default-deny NetworkPolicy."
    ]
    assert messages("kubernetes-namespace-data-listed", run) == [
        "namespace vectors is labelled sophia.ai/tier=data but not listed."
    ]
    assert messages("kubernetes-namespace-data-listed", run, data_namespaces=["vectors"]) == []
    plain = program(lambda: k8s.core.v1.Namespace("ns", metadata={"name": "apps"}))
    assert messages("kubernetes-namespace-default-deny", plain) == []


def test_a_string_metadata_does_not_crash_the_namespace_rules() -> None:
    upload = RegisteredResource(
        type="aws:devicefarm/upload:Upload",
        name="upload",
        urn="urn:pulumi:prod::sophia::aws:devicefarm/upload:Upload::upload",
        parent=None,
        provider=None,
        inputs={"name": "app.apk", "projectArn": "arn:p", "type": "ANDROID_APP"},
        protect=False,
        custom=True,
        outputs={"name": "app.apk", "metadata": '{"sdk": 33}'},
    )
    run = namespace_stack(DENY)
    with_upload = StackRun(run.project, run.stack, (*run.resources, upload), {})
    for policy in ("kubernetes-namespace-default-deny", "kubernetes-namespace-data-listed"):
        assert evaluation(policy, with_upload).violations == ()


def test_data_namespaces_enforce_restricted_pod_security() -> None:
    policy = "kubernetes-namespace-restricted-pod-security"
    assert messages(policy, namespace_stack()) == []
    baseline = with_(NAMESPACE_OK, labels={"sophia.ai/tier": "data", "pod-security.kubernetes.io/enforce": "baseline"})
    assert messages(policy, namespace_stack(metadata=baseline)) == [
        "namespace sophia-data enforces baseline pod security, not restricted."
    ]
    unlabelled = {"name": "sophia-data"}
    assert messages(policy, namespace_stack(metadata=unlabelled)) == [
        "namespace sophia-data enforces no pod security, not restricted."
    ]


# -- RBAC, PDBs, bare pods, Helm, StatefulSet volumes ------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: k8s.rbac.v1.Role(
                "r", metadata={"name": "reader"}, rules=[{"api_groups": [""], "resources": ["pods"], "verbs": ["get"]}]
            ),
            [],
        ),
        (
            lambda: k8s.rbac.v1.Role(
                "r", metadata={"name": "all"}, rules=[{"api_groups": ["*"], "resources": ["*"], "verbs": ["*"]}]
            ),
            ["Role all rule 0 grants '*' apiGroups, '*' resources, '*' verbs."],
        ),
        (
            lambda: k8s.rbac.v1.ClusterRole(
                "r",
                metadata={"name": "secrets"},
                rules=[{"api_groups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            ),
            ["ClusterRole secrets rule 0 grants read every secret."],
        ),
        (
            lambda: k8s.rbac.v1.Role(
                "r",
                metadata={"name": "exec"},
                rules=[{"api_groups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
            ),
            ["Role exec rule 0 grants exec into pods."],
        ),
        (
            lambda: k8s.rbac.v1.ClusterRole(
                "r",
                metadata={"name": "esc"},
                rules=[
                    {
                        "api_groups": ["rbac.authorization.k8s.io"],
                        "resources": ["clusterroles"],
                        "verbs": ["escalate", "bind"],
                    }
                ],
            ),
            ["ClusterRole esc rule 0 grants verb bind, verb escalate."],
        ),
        (
            lambda: k8s.rbac.v1.ClusterRoleBinding(
                "b",
                metadata={"name": "ops-admin"},
                role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                subjects=[{"kind": "ServiceAccount", "name": "ops", "namespace": "ops"}],
            ),
            ["ClusterRoleBinding ops-admin grants cluster-admin."],
        ),
    ],
    ids=["scoped", "wildcards", "secrets", "exec", "escalate", "cluster-admin"],
)
def test_rbac(build: Any, expected: list[str]) -> None:
    assert messages("kubernetes-rbac-role-no-escalation", program(build)) == expected


def test_reviewed_roles_are_accepted() -> None:
    run = program(
        lambda: k8s.rbac.v1.ClusterRole(
            "r",
            metadata={"name": "cnpg-manager"},
            rules=[{"api_groups": [""], "resources": ["secrets"], "verbs": ["list"]}],
        )
    )
    assert len(messages("kubernetes-rbac-role-no-escalation", run)) == 1
    assert messages("kubernetes-rbac-role-no-escalation", run, {"reviewedRoles": ["cnpg-manager"]}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"max_unavailable": 1}, []),
        ({"min_available": 1}, []),
        ({"max_unavailable": 0}, ["maxUnavailable is 0.0: no pod may ever be evicted."]),
        ({"max_unavailable": "0%"}, ["maxUnavailable is 0%: no pod may ever be evicted."]),
        ({"min_available": "100%"}, ["minAvailable is 100%: no pod may ever be evicted."]),
    ],
)
def test_disruption_budgets(spec: dict[str, Any], expected: list[str]) -> None:
    run = program(lambda: k8s.policy.v1.PodDisruptionBudget("pdb", spec={**spec, "selector": {"match_labels": LABELS}}))
    assert messages("kubernetes-poddisruptionbudget-allows-eviction", run) == expected


def test_bare_pods_are_flagged_as_hygiene() -> None:
    found = evaluation("kubernetes-pod-no-bare-pods", program(lambda: KINDS["Pod"](POD))).violations
    assert [(v.level, v.message) for v in found] == [("advisory", "a bare Pod.")]
    assert messages("kubernetes-pod-no-bare-pods", program(lambda: KINDS["Deployment"](POD))) == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("88.0.0", []),
        ("87.1.0", ["chart kube-prometheus-stack 87.1.0 is not approved (88.0.0)."]),
        ("^88.0.0", ["chart kube-prometheus-stack is not pinned to one version (^88.0.0)."]),
        (None, ["chart kube-prometheus-stack is not pinned to one version (no version)."]),
    ],
)
def test_helm_releases_are_reviewed_charts(version: str | None, expected: list[str]) -> None:
    run = program(
        lambda: k8s.helm.v3.Release(
            "monitoring",
            chart="kube-prometheus-stack",
            version=version,
            repository_opts={"repo": "https://prometheus-community.github.io/helm-charts"},
            values={"nodeExporter": {"hostNetwork": True}},
        )
    )
    config = {"approvedCharts": {"kube-prometheus-stack": ["88.0.0"]}}
    assert messages("kubernetes-helm-release-chart-approved", run, config) == expected


def test_statefulset_volumes_are_retained() -> None:
    policy = "kubernetes-statefulset-volumes-retained"

    def statefulset(**spec_changes: Any) -> Any:
        spec = {
            "service_name": "db",
            "selector": {"match_labels": LABELS},
            "template": template(POD),
            "volume_claim_templates": [{"metadata": {"name": "data"}, "spec": {"access_modes": ["ReadWriteOnce"]}}],
            "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
        }
        return program(lambda: k8s.apps.v1.StatefulSet("s", metadata=META, spec=with_(spec, **spec_changes)))

    assert messages(policy, statefulset()) == []
    deleting = statefulset(persistent_volume_claim_retention_policy={"when_deleted": "Delete", "when_scaled": "Retain"})
    assert messages(policy, deleting) == [
        "persistentVolumeClaimRetentionPolicy.whenDeleted is Delete; data would be deleted."
    ]
    assert (
        messages(policy, statefulset(volume_claim_templates=DELETE, persistent_volume_claim_retention_policy=DELETE))
        == []
    )


def test_workloads_under_an_explicit_provider_default_namespace() -> None:
    def build() -> None:
        provider = k8s.Provider("data", namespace="sophia-data")
        k8s.core.v1.Service("svc", spec={**API, "type": "LoadBalancer"}, opts=pulumi.ResourceOptions(provider=provider))

    assert len(messages(POLICY_EXPOSURE, program(build))) == 1
