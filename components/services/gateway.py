"""`FleetGateway`: the fleet's public entry point, an Envoy Gateway `Gateway` with its certificate.

A GatewayClass for Envoy Gateway's controller; an EnvoyProxy that shapes the proxies (two replicas
spread over nodes, restricted security context, on `gateway.pool`'s nodes when set, exposed as a
LoadBalancer Service or on fixed node ports behind an AWS NLB); the Gateway with HTTP on 80 (ACME
challenges, then a redirect to HTTPS) and HTTPS on 443; and the HTTPS certificate for every
`gateway.hostnames` from Let's Encrypt through cert-manager (HTTP-01 through this Gateway, or
DNS-01 in Route 53 where the name's traffic goes to the other region).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.compute.cloud_init import POOL_LABEL
from components.services.routing import (
    GATEWAY_TLS_SECRET,
    HTTP_LISTENER,
    gateway_spec,
    redirect_route_spec,
)
from components.services.workload import OWNING_GATEWAY_NAME, OWNING_GATEWAY_NAMESPACE

GATEWAY_CLASS = "sophia"
GATEWAY = "sophia"
PROXY_CONFIG = "sophia-gateway"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
ACME_SOLVER_PORT = 8089
PROXY_REPLICAS = 2


@dataclass(frozen=True)
class Route53Dns:
    """Solve ACME challenges with DNS-01 records in a Route 53 zone (cert-manager's own AWS identity)."""

    region: str
    hosted_zone_id: str


@dataclass(frozen=True)
class NodePorts:
    """Fixed node ports of the proxies' Service, for a load balancer made outside the cluster."""

    http: int
    https: int


@dataclass(frozen=True)
class FleetGatewayArgs:
    """Inputs of `FleetGateway`."""

    namespace: str
    hostnames: Sequence[str]
    acme_email: str
    proxy_namespace: str
    """Where Envoy Gateway runs the proxies (its controller's namespace)."""
    pool: str | None = None
    """GPU pool whose nodes run the proxies (they tolerate its taint); None: anywhere untainted."""
    dns01: Route53Dns | None = None
    """DNS-01 in Route 53 instead of HTTP-01 through the Gateway."""
    node_ports: NodePorts | None = None
    """Expose the proxies on these node ports (NodePort Service) instead of a LoadBalancer Service."""


def envoy_proxy_spec(args: FleetGatewayArgs) -> dict[str, Any]:
    selector = {OWNING_GATEWAY_NAME: GATEWAY, OWNING_GATEWAY_NAMESPACE: args.namespace}
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
        ],
    }
    if args.pool is not None:
        pod["nodeSelector"] = {POOL_LABEL: args.pool}
        pod["tolerations"] = [{"key": POOL_LABEL, "operator": "Equal", "value": args.pool, "effect": "NoSchedule"}]
    service: dict[str, Any] = {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
    if args.node_ports is not None:
        service = {
            "type": "NodePort",
            "externalTrafficPolicy": "Cluster",
            "patch": {
                "type": "StrategicMerge",
                "value": {
                    "spec": {
                        "ports": [
                            {"port": 80, "nodePort": args.node_ports.http},
                            {"port": 443, "nodePort": args.node_ports.https},
                        ]
                    }
                },
            },
        }
    return {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "envoyDeployment": {
                    "replicas": PROXY_REPLICAS,
                    "pod": pod,
                    "container": {
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "512Mi"},
                            "limits": {"cpu": "2", "memory": "1Gi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    },
                },
                "envoyPDB": {"maxUnavailable": 1},
                "envoyService": service,
            },
        },
        # Drain connections for 30 s on shutdown: a rollout of the proxies drops no request.
        "shutdown": {"drainTimeout": "30s", "minDrainDuration": "5s"},
    }


def issuer_spec(args: FleetGatewayArgs) -> dict[str, Any]:
    solver: dict[str, Any]
    if args.dns01 is not None:
        solver = {"dns01": {"route53": {"region": args.dns01.region, "hostedZoneID": args.dns01.hosted_zone_id}}}
    else:
        parent = {"name": GATEWAY, "namespace": args.namespace, "kind": "Gateway", "sectionName": HTTP_LISTENER}
        solver = {"http01": {"gatewayHTTPRoute": {"parentRefs": [parent]}}}
    return {
        "acme": {
            "server": ACME_SERVER,
            "email": args.acme_email,
            "privateKeySecretRef": {"name": "sophia-acme-account"},
            "solvers": [solver],
        }
    }


def certificate_spec(hostnames: Sequence[str], issuer: str) -> dict[str, Any]:
    return {
        "secretName": GATEWAY_TLS_SECRET,
        "dnsNames": list(hostnames),
        "duration": "2160h",
        "renewBefore": "720h",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
    }


class FleetGateway(pulumi.ComponentResource):
    """`gateway` and `https_listener` are what routes attach to."""

    gateway_name = GATEWAY

    def __init__(self, name: str, args: FleetGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:services:Gateway", name, None, opts)
        ns = args.namespace
        child = pulumi.ResourceOptions(parent=self)
        gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GATEWAY_CLASS),
            spec={"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
            opts=child,
        )
        proxy = k8s.apiextensions.CustomResource(
            f"{name}-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_CONFIG, namespace=ns),
            spec=envoy_proxy_spec(args),
            opts=child,
        )
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GATEWAY, namespace=ns),
            spec=gateway_spec(GATEWAY_CLASS, PROXY_CONFIG),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway_class, proxy]),
        )
        issuer_name = f"{ns}-acme"
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=issuer_name),
            spec=issuer_spec(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GATEWAY_TLS_SECRET, namespace=ns),
            spec=certificate_spec(args.hostnames, issuer_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[issuer]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-redirect",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="https-redirect", namespace=ns),
            spec=redirect_route_spec(GATEWAY),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway]),
        )
        if args.dns01 is None:
            # cert-manager's HTTP-01 solver pods answer the challenges the proxies pass on.
            k8s.networking.v1.NetworkPolicy(
                f"{name}-acme-solver",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="acme-http01-solver", namespace=ns),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"acme.cert-manager.io/http01-solver": "true"}
                    ),
                    policy_types=["Ingress"],
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=[
                                k8s.networking.v1.NetworkPolicyPeerArgs(
                                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={"kubernetes.io/metadata.name": args.proxy_namespace}
                                    ),
                                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={OWNING_GATEWAY_NAME: GATEWAY}
                                    ),
                                )
                            ],
                            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=ACME_SOLVER_PORT)],
                        )
                    ],
                ),
                opts=child,
            )
        self.register_outputs({"gateway": GATEWAY})
