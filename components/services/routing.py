"""Routing the fleet through the Gateway API (pure: documents, no resources).

One HTTPRoute per kind of service (ai, business, data), one rule per service named after it,
matching the path prefix `/<service>`. A rule's backends are the service's Deployments: weighted
by the release weight (`next`) and, across pools, by GPU capability. Per rule (`sectionName`), a
BackendTrafficPolicy of Envoy Gateway sets retries within a budget, circuit breaking, outlier
detection, least-request balancing with slow start and, for the business and data kinds, response
compression (the plan's 1.2); the rule's own `timeouts` set the request timeout. A kind with more
than 16 services (HTTPRoute's `maxItems`) continues in `<kind>-2`, `<kind>-3`, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.services.backends import Backend
from settings.services import ServiceKind, ServiceSettings

GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
RULES_PER_ROUTE = 16
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
GATEWAY_TLS_SECRET = "gateway-tls"  # noqa: S105 - a Secret's name, not its value
# Response compression for JSON APIs; AI responses stream tokens and are left as they are.
COMPRESSED_KINDS = frozenset({ServiceKind.BUSINESS, ServiceKind.DATA})
RETRIES = {ServiceKind.AI: 1, ServiceKind.BUSINESS: 2, ServiceKind.DATA: 2}


def route_pages(services: Sequence[ServiceSettings]) -> dict[str, list[ServiceSettings]]:
    """HTTPRoute name -> the services it serves, in config order, at most 16 per route."""
    pages: dict[str, list[ServiceSettings]] = {}
    for kind in ServiceKind:
        members = [s for s in services if s.kind is kind]
        for index in range(0, len(members), RULES_PER_ROUTE):
            name = kind.value if index == 0 else f"{kind.value}-{index // RULES_PER_ROUTE + 1}"
            pages[name] = members[index : index + RULES_PER_ROUTE]
    return pages


def path_prefix(service: ServiceSettings) -> str:
    return f"/{service.name}"


def route_rule(service: ServiceSettings, backends: Sequence[Backend]) -> dict[str, Any]:
    targets: dict[str, int] = {}
    for backend in backends:
        targets[backend.service_name] = targets.get(backend.service_name, 0) + backend.weight
    return {
        "name": service.name,
        "matches": [{"path": {"type": "PathPrefix", "value": path_prefix(service)}}],
        "backendRefs": [
            {"group": "", "kind": "Service", "name": name, "port": service.port, "weight": weight}
            for name, weight in targets.items()
        ],
        "timeouts": {"request": f"{service.request_timeout_seconds}s"},
    }


def http_route_spec(
    services: Sequence[ServiceSettings],
    backends: dict[str, list[Backend]],
    gateway: str,
    hostnames: Sequence[str],
) -> dict[str, Any]:
    return {
        "parentRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway, "sectionName": HTTPS_LISTENER}],
        "hostnames": list(hostnames),
        "rules": [route_rule(service, backends[service.name]) for service in services],
    }


def health_route_spec(service: ServiceSettings, gateway: str, hostnames: Sequence[str], path: str) -> dict[str, Any]:
    """`path` on the gateway answers with `service`'s health path: what Route 53 checks, end to end."""
    return {
        "parentRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway, "sectionName": HTTPS_LISTENER}],
        "hostnames": list(hostnames),
        "rules": [
            {
                "name": "health",
                "matches": [{"path": {"type": "Exact", "value": path}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": service.health_path}},
                    }
                ],
                "backendRefs": [{"group": "", "kind": "Service", "name": service.name, "port": service.port}],
                "timeouts": {"request": "5s"},
            }
        ],
    }


def redirect_route_spec(gateway: str) -> dict[str, Any]:
    """Plain HTTP answers with a redirect to HTTPS."""
    return {
        "parentRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway, "sectionName": HTTP_LISTENER}],
        "rules": [
            {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
        ],
    }


def traffic_policy_spec(service: ServiceSettings, route: str, max_replicas: int) -> dict[str, Any]:
    """Retries within a 20 % budget, circuit breaking, outlier detection and balancing for one rule."""
    spec: dict[str, Any] = {
        "targetRefs": [{"group": GATEWAY_API, "kind": "HTTPRoute", "name": route, "sectionName": service.name}],
        "loadBalancer": {"type": "LeastRequest", "slowStart": {"window": "30s"}},
        "retry": {
            "numRetries": RETRIES[service.kind],
            # Only what never reached the service, or what it refused before doing any work.
            "retryOn": {
                "triggers": ["connect-failure", "refused-stream", "retriable-status-codes"],
                "httpStatusCodes": [503],
            },
            "perRetry": {"backOff": {"baseInterval": "100ms", "maxInterval": "1s"}},
        },
        "circuitBreaker": {
            # The plan's queue depth per replica, at the most replicas: the backlog the gateway holds.
            "maxPendingRequests": service.scaling.queue_depth * max_replicas,
            "retryBudget": {"percent": {"numerator": 20, "denominator": 100}, "minRetryConcurrency": 3},
        },
        "healthCheck": {
            "passive": {
                "consecutive5XxErrors": 5,
                "consecutiveGatewayErrors": 3,
                "interval": "10s",
                "baseEjectionTime": "30s",
                "maxEjectionPercent": 50,
            }
        },
    }
    if service.kind in COMPRESSED_KINDS:
        spec["compressor"] = [
            {"type": "Brotli", "minContentLength": "1Ki"},
            {"type": "Gzip", "minContentLength": "1Ki"},
        ]
    return spec


def gateway_spec(class_name: str, proxy_config: str) -> dict[str, Any]:
    """HTTP on 80 (redirects) and HTTPS on 443 with the certificate cert-manager
    keeps in `gateway-tls`; routes from the gateway's own namespace only."""
    same = {"namespaces": {"from": "Same"}}
    return {
        "gatewayClassName": class_name,
        "infrastructure": {"parametersRef": {"group": ENVOY_GATEWAY, "kind": "EnvoyProxy", "name": proxy_config}},
        "listeners": [
            {"name": HTTP_LISTENER, "protocol": "HTTP", "port": 80, "allowedRoutes": same},
            {
                "name": HTTPS_LISTENER,
                "protocol": "HTTPS",
                "port": 443,
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": GATEWAY_TLS_SECRET}]},
                "allowedRoutes": same,
            },
        ],
    }
