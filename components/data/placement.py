"""Where a data store runs, who reaches it, and what it offers monitoring and backups (pure helpers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi_kubernetes as k8s

from settings.data import KubernetesSettings


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
# Every scrape target of the platform's own (the stores' exporters, CloudNativePG's instances, the
# Pushgateway, the GPU exporter) gets this target label from its ServiceMonitor or PodMonitor:
# the ServiceDown alert watches those targets and no others.
PLATFORM_LABEL = "sophia_platform"
PLATFORM_RELABELING = {"action": "replace", "targetLabel": PLATFORM_LABEL, "replacement": "true"}


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
# Pods of the restore-check jobs only: the Pushgateway's NetworkPolicy admits them (and Prometheus),
# and only they hold the password of PUSH_USER, the one user the Pushgateway takes pushes from.
RESTORE_CHECK_LABEL = "sophia.ai/restore-check"
PUSH_USER = "restore-check"


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
    object_prefix: str | None = None
    """S3 key prefix of the snapshots the store writes itself (Qdrant), where it has one."""


def labels(app: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "sophia",
        "app.kubernetes.io/managed-by": "pulumi",
        "sophia.ai/tier": "data",
    }
