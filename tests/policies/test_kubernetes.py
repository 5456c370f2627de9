"""Kubernetes rules: a compliant baseline passes; each broken property fails with its message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.helpers import DELETE, changed, messages, res, run_of

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONTAINER: dict[str, Any] = {
    "name": "api",
    "image": "ghcr.io/sophia/api:1.4.2",
    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 10001.0},
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "env": [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ],
}
WORKLOAD: dict[str, Any] = {
    "metadata": {"name": "api", "namespace": "sophia-apps"},
    "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": True}, "containers": [CONTAINER]}}},
}
C = "spec.template.spec.containers.0"


def deployment(inputs: dict[str, Any], type_: str = DEPLOYMENT) -> Any:
    return run_of(res(type_, "api", inputs))


@pytest.mark.parametrize(
    ("policy", "path", "value", "expected"),
    [
        ("kubernetes-workload-no-privileged", f"{C}.securityContext.privileged", True, "container api is privileged."),
        (
            "kubernetes-workload-no-privileged",
            f"{C}.securityContext.allowPrivilegeEscalation",
            True,
            "container api allows privilege escalation.",
        ),
        ("kubernetes-workload-no-privileged", "spec.template.spec.hostNetwork", True, "hostNetwork is true."),
        ("kubernetes-workload-no-privileged", "spec.template.spec.hostPID", True, "hostPID is true."),
        (
            "kubernetes-workload-run-as-non-root",
            f"{C}.securityContext.runAsNonRoot",
            False,
            "container api may run as root.",
        ),
        (
            "kubernetes-workload-run-as-non-root",
            f"{C}.securityContext.runAsUser",
            0.0,
            "container api may run as root.",
        ),
        (
            "kubernetes-workload-resources-set",
            f"{C}.resources.limits",
            DELETE,
            "container api lacks limits.cpu, limits.memory.",
        ),
        (
            "kubernetes-workload-resources-set",
            f"{C}.resources.requests.memory",
            DELETE,
            "container api lacks requests.memory.",
        ),
        (
            "kubernetes-workload-image-pinned",
            f"{C}.image",
            "ghcr.io/sophia/api:latest",
            "container api image 'ghcr.io/sophia/api:latest' is not pinned.",
        ),
        (
            "kubernetes-workload-image-pinned",
            f"{C}.image",
            "localhost:5000/api",
            "container api image 'localhost:5000/api' is not pinned.",
        ),
        (
            "kubernetes-config-no-plaintext-secrets",
            f"{C}.env.1",
            {"name": "DB_PASSWORD", "value": "hunter2"},
            "container api sets DB_PASSWORD as a literal.",
        ),
    ],
)
def test_workloads(policy: str, path: str, value: Any, expected: str) -> None:
    assert messages(policy, deployment(WORKLOAD)) == []
    assert messages(policy, deployment(changed(WORKLOAD, path, value))) == [expected]


def test_pod_level_non_root_covers_containers_without_their_own() -> None:
    inputs = changed(WORKLOAD, f"{C}.securityContext", {"allowPrivilegeEscalation": False})
    assert messages("kubernetes-workload-run-as-non-root", deployment(inputs)) == []


def test_digest_pinned_image_passes() -> None:
    inputs = changed(WORKLOAD, f"{C}.image", "redis@sha256:" + "a" * 64)
    assert messages("kubernetes-workload-image-pinned", deployment(inputs)) == []


@pytest.mark.parametrize(
    ("type_", "wrap"),
    [
        ("kubernetes:core/v1:Pod", lambda spec: {"spec": spec}),
        ("kubernetes:batch/v1:CronJob", lambda spec: {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
        ("kubernetes:apps/v1:StatefulSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
    ],
)
def test_every_workload_kind_is_covered(type_: str, wrap: Any) -> None:
    privileged = {**CONTAINER, "securityContext": {**CONTAINER["securityContext"], "privileged": True}}
    spec = {
        "securityContext": {"runAsNonRoot": True},
        "initContainers": [{**privileged, "name": "init"}],
        "containers": [CONTAINER],
    }
    assert messages("kubernetes-workload-no-privileged", run_of(res(type_, "w", wrap(spec)))) == [
        "container init is privileged."
    ]


CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"REDIS_PASSWORD": "x"}, "ConfigMap key 'REDIS_PASSWORD' looks like a secret."),
        ({"qdrant-api-key": "x"}, "ConfigMap key 'qdrant-api-key' looks like a secret."),
        ({"tls.pem": "-----BEGIN RSA PRIVATE KEY-----\nabc"}, "ConfigMap key 'tls.pem' looks like a secret."),
    ],
)
def test_config_maps(data: dict[str, str], expected: str) -> None:
    policy = "kubernetes-config-no-plaintext-secrets"
    assert messages(policy, run_of(res(CONFIG_MAP, "cm", {"data": {"LOG_LEVEL": "info", "ca.crt": "CERT"}}))) == []
    assert messages(policy, run_of(res(CONFIG_MAP, "cm", {"data": data}))) == [expected]


SERVICE = "kubernetes:core/v1:Service"


def service(namespace: str, type_: str, selector: dict[str, str], sources: list[str] | None = None) -> Any:
    spec: dict[str, Any] = {"type": type_, "selector": selector}
    if sources is not None:
        spec["loadBalancerSourceRanges"] = sources
    return run_of(res(SERVICE, "svc", {"metadata": {"namespace": namespace}, "spec": spec}))


def test_no_load_balancer_open_to_the_internet_in_front_of_a_store() -> None:
    policy = "kubernetes-service-no-public-datastore"
    assert messages(policy, service("sophia-data", "ClusterIP", {"app": "redis"})) == []
    assert messages(policy, service("sophia-apps", "LoadBalancer", {"app": "api"})) == []
    expected = ["LoadBalancer Service in front of a data store, open to every address."]
    assert messages(policy, service("sophia-data", "LoadBalancer", {"app": "redis"})) == expected
    assert messages(policy, service("sophia-apps", "LoadBalancer", {"sophia.ai/tier": "data"})) == expected
    # Replication from another region: only that region's egress addresses.
    assert messages(policy, service("sophia-data", "LoadBalancer", {"app": "pg"}, ["198.51.100.0/28"])) == []
    assert messages(
        policy, service("sophia-data", "LoadBalancer", {"app": "pg"}, ["198.51.100.0/28", "0.0.0.0/0"])
    ) == ["LoadBalancer Service in front of a data store admits 198.51.100.0/28, 0.0.0.0/0."]


NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DENY_ALL = {
    "metadata": {"name": "default-deny", "namespace": "sophia-data"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


def test_data_namespaces_need_default_deny() -> None:
    policy = "kubernetes-namespace-default-deny"
    namespace = res(NAMESPACE, "data", {"metadata": {"name": "sophia-data"}})
    assert messages(policy, run_of(namespace, res(NETWORK_POLICY, "deny", DENY_ALL))) == []
    assert messages(policy, run_of(namespace)) == ["namespace sophia-data has no default-deny NetworkPolicy."]
    allows = changed(DENY_ALL, "spec.ingress", [{"from": [{"podSelector": {}}]}])
    assert len(messages(policy, run_of(namespace, res(NETWORK_POLICY, "deny", allows)))) == 1
    selective = changed(DENY_ALL, "spec.podSelector", {"matchLabels": {"app": "redis"}})
    assert len(messages(policy, run_of(namespace, res(NETWORK_POLICY, "deny", selective)))) == 1


def test_labelled_namespaces_count_as_data_namespaces() -> None:
    policy = "kubernetes-namespace-default-deny"
    labelled = res(NAMESPACE, "vec", {"metadata": {"name": "vectors", "labels": {"sophia.ai/tier": "data"}}})
    assert messages(policy, run_of(labelled)) == ["namespace vectors has no default-deny NetworkPolicy."]
    plain = res(NAMESPACE, "apps", {"metadata": {"name": "apps"}})
    assert messages(policy, run_of(plain)) == []


def test_statefulset_volumes_are_retained() -> None:
    policy = "kubernetes-statefulset-volumes-retained"
    spec = {
        "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    }
    statefulset = "kubernetes:apps/v1:StatefulSet"
    assert messages(policy, run_of(res(statefulset, "s", {"spec": spec}))) == []
    deleting = changed({"spec": spec}, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "Delete")
    assert messages(policy, run_of(res(statefulset, "s", deleting))) == [
        "persistentVolumeClaimRetentionPolicy.whenDeleted is Delete; data would be deleted."
    ]
    stateless = {"spec": {"replicas": 2}}
    assert messages(policy, run_of(res(statefulset, "s", stateless))) == []
