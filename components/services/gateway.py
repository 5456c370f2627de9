"""`FleetGateway`: the fleet's public entry point, an Envoy Gateway `Gateway` with its certificate.

A GatewayClass for Envoy Gateway's controller; an EnvoyProxy that shapes the proxies (two replicas
spread over nodes, restricted security context, on `gateway.pool`'s nodes when set, exposed as a
LoadBalancer Service or on fixed node ports behind an AWS NLB); the Gateway with HTTP on 80 (a
redirect to HTTPS) and HTTPS on 443; and the HTTPS certificate for every
`gateway.hostnames` from Let's Encrypt through cert-manager, by DNS-01 in the Route 53 zone of
the failover record (`components/services/acme_dns.py` says why not HTTP-01).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.compute.cloud_init import POOL_LABEL
from components.data.namespace import CERT_MANAGER_NAMESPACE
from components.services.routing import GATEWAY_TLS_SECRET, gateway_spec, redirect_route_spec
from components.services.workload import OWNING_GATEWAY_NAME, OWNING_GATEWAY_NAMESPACE

GATEWAY_CLASS = "sophia"
GATEWAY = "sophia"
PROXY_CONFIG = "sophia-gateway"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
PROXY_REPLICAS = 2


@dataclass(frozen=True)
class Route53Dns:
    """Solve ACME challenges with DNS-01 records in a Route 53 zone."""

    region: str
    hosted_zone_id: str
    credentials: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None
    """(access key id, secret access key) of `AcmeDnsIdentity`; None: cert-manager's ambient AWS identity."""


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
    dns01: Route53Dns
    """Where cert-manager proves the host names are ours."""
    pool: str | None = None
    """GPU pool whose nodes run the proxies (they tolerate its taint); None: anywhere untainted."""
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


ACME_DNS_SECRET = "route53-acme"  # noqa: S105 - a Secret's name, not its value


def issuer_spec(args: FleetGatewayArgs) -> dict[str, Any]:
    route53: dict[str, Any] = {"region": args.dns01.region, "hostedZoneID": args.dns01.hosted_zone_id}
    if args.dns01.credentials is not None:
        route53["accessKeyIDSecretRef"] = {"name": ACME_DNS_SECRET, "key": "access-key-id"}
        route53["secretAccessKeySecretRef"] = {"name": ACME_DNS_SECRET, "key": "secret-access-key"}
    solver = {"dns01": {"route53": route53}}
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
        credentials: list[pulumi.Resource] = []
        if args.dns01.credentials is not None:
            # A ClusterIssuer reads its Secrets in cert-manager's own namespace.
            key_id, secret_key = args.dns01.credentials
            credentials.append(
                k8s.core.v1.Secret(
                    f"{name}-acme-dns",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=ACME_DNS_SECRET, namespace=CERT_MANAGER_NAMESPACE),
                    string_data={
                        "access-key-id": key_id,
                        "secret-access-key": pulumi.Output.secret(secret_key),
                    },
                    opts=child,
                )
            )
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=issuer_name),
            spec=issuer_spec(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway, *credentials]),
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
        self.register_outputs({"gateway": GATEWAY})
