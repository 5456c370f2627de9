"""`FleetOperators`: KEDA and Envoy Gateway from their pinned Helm charts, or the cluster's own.

Each is installed by the stack (`install`) or taken from the cluster (`existing`, which must run
a release serving the same CRDs). An installed operator's namespace and release are kept on delete
(`retainOnDelete`, not `protect`): its chart owns CRDs, and deleting them would delete every
ScaledObject or route; switching to `existing` then drops them from the state and leaves them running.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

# KEDA 2.20.2 (kedacore/charts, chart version = app version); its CRDs are in shared/reference.
KEDA_CHART = "keda"
KEDA_VERSION = "2.20.2"
KEDA_REPO = "https://kedacore.github.io/charts"
KEDA_NAMESPACE = "keda"
# Envoy Gateway v1.9.0 (envoyproxy/gateway, charts/gateway-helm, published as an OCI chart); it
# bundles the Gateway API CRDs v1.6.1.
ENVOY_GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
ENVOY_GATEWAY_VERSION = "v1.9.0"
ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"


@dataclass(frozen=True)
class FleetOperatorsArgs:
    """Inputs of `FleetOperators`."""

    install_keda: bool
    """Install KEDA (`sophia:operators.keda`); otherwise the cluster's."""
    install_envoy_gateway: bool
    """Install Envoy Gateway (`sophia:operators.envoyGateway`); otherwise the cluster's."""


class FleetOperators(pulumi.ComponentResource):
    """`keda` and `envoy_gateway` are what ScaledObjects and Gateway objects wait for (empty when existing)."""

    proxy_namespace = ENVOY_GATEWAY_NAMESPACE

    def __init__(self, name: str, args: FleetOperatorsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:services:Operators", name, None, opts)
        self.keda: list[pulumi.Resource] = []
        self.envoy_gateway: list[pulumi.Resource] = []
        if args.install_keda:
            self.keda.append(
                self._release(
                    f"{name}-keda",
                    KEDA_NAMESPACE,
                    "restricted",
                    k8s.helm.v3.ReleaseArgs(
                        name="keda",
                        chart=KEDA_CHART,
                        version=KEDA_VERSION,
                        namespace=KEDA_NAMESPACE,
                        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KEDA_REPO),
                        values={"crds": {"install": True}, "podDisruptionBudget": {"operator": {"maxUnavailable": 1}}},
                        atomic=True,
                    ),
                )
            )
        if args.install_envoy_gateway:
            self.envoy_gateway.append(
                self._release(
                    f"{name}-envoy-gateway",
                    ENVOY_GATEWAY_NAMESPACE,
                    # The proxies' pods are shaped by the EnvoyProxy; the controller's shutdown helper
                    # is outside our control: baseline still refuses privileged and host access.
                    "baseline",
                    k8s.helm.v3.ReleaseArgs(
                        name="eg",
                        chart=ENVOY_GATEWAY_CHART,
                        version=ENVOY_GATEWAY_VERSION,
                        namespace=ENVOY_GATEWAY_NAMESPACE,
                        values={"crds": {"enabled": True}},
                        atomic=True,
                    ),
                )
            )
        self.register_outputs({})

    def _release(
        self, name: str, namespace: str, pod_security: str, release: k8s.helm.v3.ReleaseArgs
    ) -> k8s.helm.v3.Release:
        """The operator's namespace and release, `retainOnDelete`: switching the operator to `existing`
        (or leaving the stack) drops them from the state and leaves the operator running, and its CRDs
        with every object of theirs. Not `protect`: the engine refuses to drop a protected resource
        even when it is retained, and the switch would fail instead (as cert-manager's, in
        components/data/namespace.py)."""
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace, labels={"pod-security.kubernetes.io/enforce": pod_security}
            ),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        return k8s.helm.v3.Release(
            name,
            release,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns], retain_on_delete=True),
        )
