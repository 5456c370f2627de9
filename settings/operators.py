"""Which operators the stack installs and which it takes from the cluster (`sophia:operators`)."""

from __future__ import annotations

from typing import Literal

from settings.base import SettingsModel

Source = Literal["install", "existing"]
"""`install`: the stack installs the pinned release. `existing`: the cluster already runs one, which
the stack uses (and must never reconcile the same objects a second time)."""


class OperatorsSettings(SettingsModel):
    """Operators on the stack's Kubernetes clusters. The default installs each pinned release: the
    stacks' clusters (k3s on Lambda, the DR region's EKS) start without any of them. Switching one
    to `existing` stops managing it and deletes nothing in the cluster: what it installed is kept on
    delete (`retainOnDelete`). CloudNativePG's CRDs are also protected in prod and dr: unprotect them
    first (`pulumi state unprotect`), or the engine refuses to drop them."""

    cloudnative_pg: Source = "install"
    """CloudNativePG 1.30.0 (release manifest) and its Barman Cloud plugin v0.14.0."""
    prometheus_stack: Source = "install"
    """kube-prometheus-stack (Prometheus, Alertmanager, Grafana, prometheus-operator v0.93.0)."""
    cert_manager: Source = "install"
    """cert-manager v1.21.1 (Helm chart): issues and renews the stores' certificates in the cluster."""
    keda: Source = "install"
    """KEDA 2.20.2 (Helm chart): scales the service fleet on the plan's triggers."""
    envoy_gateway: Source = "install"
    """Envoy Gateway v1.9.0 (OCI Helm chart, with the Gateway API v1.6.1 CRDs): the fleet's gateway."""
