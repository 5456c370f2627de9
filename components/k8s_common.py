"""Pod and container settings every data store shares (pure helpers, no resources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi_kubernetes as k8s

from settings.model import KubernetesSettings


@dataclass(frozen=True)
class StorePlacement:
    """Where a data store runs and who may reach it; the same for every store of a stack."""

    namespace: str
    storage_class: str
    client_namespaces: Sequence[str]
    """Namespaces allowed to reach the client ports."""
    monitoring_namespace: str
    """Namespace allowed to scrape the metrics port."""
    protect: bool
    """Protect what holds data (StatefulSets, the Postgres Cluster): true in prod."""

    @classmethod
    def in_cluster(cls, kubernetes: KubernetesSettings, protect: bool) -> StorePlacement:
        """The placement `sophia:kubernetes` describes."""
        return cls(
            namespace=kubernetes.data_namespace,
            storage_class=kubernetes.storage_class,
            client_namespaces=kubernetes.client_namespaces,
            monitoring_namespace=kubernetes.monitoring_namespace,
            protect=protect,
        )


# On the one Service per store whose endpoints Prometheus scrapes (`ScrapeTarget.selector`).
SCRAPED = {"sophia.ai/metrics": "true"}


@dataclass(frozen=True)
class ScrapeTarget:
    """How Prometheus scrapes one store: the monitoring component turns it into a ServiceMonitor."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    """Labels of the Service whose endpoints are scraped."""
    port: str
    """Name of the Service port serving /metrics."""
    tls_ca_secret: str | None = None
    """Secret (key ca.crt) with the CA of an HTTPS metrics port."""
    tls_server_name: str | None = None
    bearer_secret: tuple[str, str] | None = None
    """(Secret, key) of a bearer token the endpoint requires."""


# Pods of a store's backup and restore-check jobs carry this label, valued with the store's name.
BACKUP_JOB_LABEL = "sophia.ai/backup-job"


def backup_jobs_ingress(store: str, port: int) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    """Lets the store's own backup and restore-check jobs reach its client port."""
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(
        from_=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={BACKUP_JOB_LABEL: store})
            )
        ],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)],
    )


@dataclass(frozen=True)
class BackupSource:
    """What a store's backup and restore-check jobs need to reach it."""

    store: str
    """The store's name: job names, the `store` metric label, the S3 prefix."""
    hosts: Sequence[str]
    """Hosts the jobs connect to: the read-write service, a seed node, or every peer."""
    port: int
    credentials: tuple[str, str]
    """(Secret, key) of the password or API key the jobs use."""
    ca_secret: str
    """Secret whose `ca.crt` signs the store's TLS certificate."""
    storage_gib: int
    """Size of one node's volume: the scratch volume a restore needs."""


def labels(app: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "sophia",
        "app.kubernetes.io/managed-by": "pulumi",
        "sophia.ai/tier": "data",
    }


def pod_security(user: int) -> k8s.core.v1.PodSecurityContextArgs:
    """The restricted Pod Security profile: non-root, a fixed UID/GID, RuntimeDefault seccomp."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def resources(cpu: str, memory: str, cpu_limit: str | None = None) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": cpu, "memory": memory},
        limits={"cpu": cpu_limit or cpu, "memory": memory},
    )


def spread_across_nodes(match: Mapping[str, str]) -> k8s.core.v1.AffinityArgs:
    """Prefer one pod per node; preferred, not required, so a short node count still schedules."""
    return k8s.core.v1.AffinityArgs(
        pod_anti_affinity=k8s.core.v1.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.core.v1.WeightedPodAffinityTermArgs(
                    weight=100,
                    pod_affinity_term=k8s.core.v1.PodAffinityTermArgs(
                        topology_key="kubernetes.io/hostname",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match)),
                    ),
                )
            ]
        )
    )


def namespace_selector(name: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})
    )


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Name resolution through the cluster DNS, which every pod needs under default-deny egress."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[namespace_selector("kube-system")],
        ports=[
            k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53),
            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=53),
        ],
    )


# StatefulSet volumes outlive the StatefulSet and a scale-down: data is deleted only by hand.
RETAIN_VOLUMES = k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
    when_deleted="Retain", when_scaled="Retain"
)


def volume_claim(
    name: str, pod_labels: Mapping[str, str], storage_class: str, size_gib: int
) -> k8s.core.v1.PersistentVolumeClaimArgs:
    """A StatefulSet volume claim template: one ReadWriteOnce volume per pod."""
    return k8s.core.v1.PersistentVolumeClaimArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=dict(pod_labels)),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=storage_class,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{size_gib}Gi"}),
        ),
    )


def one_unavailable(match: Mapping[str, str]) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    """Voluntary disruptions (drains, upgrades) take down at most one pod of a store at a time."""
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match))
    )


def secret_env(env: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
    """An environment variable read from a Secret, never a literal."""
    return k8s.core.v1.EnvVarArgs(
        name=env,
        value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
    )
