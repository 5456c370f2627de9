"""`ServiceFleet`: the platform's services on the GPU pools (`sophia:services`, docs/services.md).

Composes the fleet's operators (KEDA, Envoy Gateway), its namespace (restricted, default deny),
tracing (OpenTelemetry Collector and Jaeger), the Gateway, and per service: a ServiceAccount, a
Deployment, ScaledObject and PodDisruptionBudget per backend (pool and release track), the Services
the gateway and callers reach, a NetworkPolicy and a ServiceMonitor; then an HTTPRoute per kind
with a BackendTrafficPolicy per service, the services' alert rules and a dashboard per kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.services.alerts import render_service_rules
from components.services.backends import Backend, backends
from components.services.dashboards import DASHBOARD_LABEL, dashboard_json
from components.services.gateway import FleetGateway, FleetGatewayArgs, NodePorts, Route53Dns
from components.services.operators import FleetOperators, FleetOperatorsArgs
from components.services.routing import health_route_spec, http_route_spec, route_pages, traffic_policy_spec
from components.services.scaling import scaled_object_labels, scaled_object_spec
from components.services.tracing import Tracing, TracingArgs
from components.services.workload import (
    FleetContext,
    backend_selector,
    deployment_spec,
    disruption_budget_spec,
    network_policy_spec,
    service_labels,
    service_monitor_spec,
    service_spec,
    stable_selector,
)
from settings.observability import AlertThresholds
from settings.services import FleetSettings, ServiceKind, ServiceSettings

TRACING_NAMESPACE = "tracing"


@dataclass(frozen=True)
class ServiceFleetArgs:
    """Inputs of `ServiceFleet`."""

    services: Sequence[ServiceSettings]
    """`sophia:services`."""
    fleet: FleetSettings
    """`sophia:fleet`."""
    instance_types: Mapping[str, str]
    """Each pool's instance type (for capability weights)."""
    environment: str
    thresholds: AlertThresholds
    """The plan's alert thresholds (`sophia:monitoring.thresholds`)."""
    monitoring_namespace: str
    data_namespace: str
    prometheus_url: str
    """Prometheus inside the cluster, which the KEDA triggers query."""
    storage_class: str
    """StorageClass of Jaeger's span volume."""
    protect: bool
    """Protect what holds data or owns CRDs (Jaeger's volume, the operators' releases): true in prod."""
    dns01: Route53Dns
    """The Route 53 zone (and identity) cert-manager proves the gateway's host names in."""
    install_keda: bool = True
    install_envoy_gateway: bool = True
    standby: bool = False
    """The DR region's warm standby: each backend keeps `dr.standbyReplicas`."""
    gpu_runtime_class: str | None = "nvidia"
    node_ports: NodePorts | None = None
    """Expose the gateway on fixed node ports (behind an AWS NLB) instead of a LoadBalancer Service."""
    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels the Prometheus Operator selects ServiceMonitors and rules by (`sophia:monitoring.resourceLabels`)."""


class ServiceFleet(pulumi.ComponentResource):
    """`backends` by service name; `gateway` (its proxies serve `sophia:fleet.gateway.hostnames`)."""

    backends: dict[str, list[Backend]]

    def __init__(self, name: str, args: ServiceFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:services:Fleet", name, None, opts)
        fleet = args.fleet
        ns = fleet.namespace
        child = pulumi.ResourceOptions(parent=self)
        self.operators = FleetOperators(
            f"{name}-operators",
            FleetOperatorsArgs(args.install_keda, args.install_envoy_gateway),
            child,
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns,
                labels={"pod-security.kubernetes.io/enforce": "restricted", "sophia.ai/tier": "services"},
            ),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            opts=in_namespace,
        )
        tracing = Tracing(
            f"{name}-tracing",
            TracingArgs(
                namespace=TRACING_NAMESPACE,
                client_namespaces=[ns],
                monitoring_namespace=args.monitoring_namespace,
                sample_ratio=fleet.tracing.sample_ratio,
                retention_hours=fleet.tracing.retention_hours,
                storage_gib=fleet.tracing.storage_gib,
                storage_class=args.storage_class,
                protect=args.protect,
            ),
            in_namespace,
        )
        self.gateway = FleetGateway(
            f"{name}-gateway",
            FleetGatewayArgs(
                namespace=ns,
                hostnames=fleet.gateway.hostnames,
                acme_email=fleet.gateway.acme_email,
                proxy_namespace=FleetOperators.proxy_namespace,
                pool=fleet.gateway.pool,
                dns01=args.dns01,
                node_ports=args.node_ports,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[namespace, *self.operators.envoy_gateway]),
        )
        ctx = FleetContext(
            namespace=ns,
            environment=args.environment,
            gateway_name=FleetGateway.gateway_name,
            gateway_namespace=ns,
            proxy_namespace=FleetOperators.proxy_namespace,
            monitoring_namespace=args.monitoring_namespace,
            data_namespace=args.data_namespace,
            tracing_namespace=TRACING_NAMESPACE,
            otlp_endpoint=tracing.otlp_endpoint,
            tracing_ca_secret=tracing.ca_secret,
            sample_ratio=fleet.tracing.sample_ratio,
            gpu_runtime_class=args.gpu_runtime_class,
        )
        self.backends = {
            service.name: backends(service, args.instance_types, standby=args.standby) for service in args.services
        }
        workloads = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *tracing.ready])
        scaled = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *self.operators.keda])
        services: dict[str, list[pulumi.Resource]] = {}
        for service in args.services:
            services[service.name] = self._service(
                name, service=service, args=args, ctx=ctx, workloads=workloads, scaled=scaled
            )
        self._routes(name, args, services)
        k8s.apiextensions.CustomResource(
            f"{name}-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="sophia-services", namespace=ns, labels=dict(args.monitor_labels) or None
            ),
            spec=render_service_rules(args.services, ns, args.thresholds),
            opts=in_namespace,
        )
        for kind in ServiceKind:
            members = [s for s in args.services if s.kind is kind]
            if members:
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboard-{kind.value}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"sophia-services-{kind.value}-dashboard", namespace=ns, labels=DASHBOARD_LABEL
                    ),
                    data={f"sophia-services-{kind.value}.json": dashboard_json(kind, members, ns)},
                    opts=in_namespace,
                )
        self.register_outputs({"namespace": ns})

    def _service(
        self,
        name: str,
        *,
        service: ServiceSettings,
        args: ServiceFleetArgs,
        ctx: FleetContext,
        workloads: pulumi.ResourceOptions,
        scaled: pulumi.ResourceOptions,
    ) -> list[pulumi.Resource]:
        """The service's objects; returns the Services the gateway routes to."""
        ns = ctx.namespace
        prefix = f"{name}-{service.name}"
        own = self.backends[service.name]
        single = len(own) == 1
        account = k8s.core.v1.ServiceAccount(
            f"{prefix}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service.name, namespace=ns, labels=service_labels(service, scraped=False)
            ),
            automount_service_account_token=False,
            opts=workloads,
        )
        targets: list[pulumi.Resource] = [
            k8s.core.v1.Service(
                f"{prefix}-service",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=service.name, namespace=ns, labels=service_labels(service, scraped=single)
                ),
                spec=service_spec(service, stable_selector(service)),
                opts=workloads,
            )
        ]
        callees = [other for other in args.services if service.name in other.callers]
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service.name, namespace=ns, labels=service_labels(service, scraped=False)
            ),
            spec=network_policy_spec(service, callees, ctx),
            opts=workloads,
        )
        k8s.apiextensions.CustomResource(
            f"{prefix}-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service.name, namespace=ns, labels=dict(args.monitor_labels) or None
            ),
            spec=service_monitor_spec(service, ns),
            opts=workloads,
        )
        for backend in own:
            labels = backend.labels
            deployment = k8s.apps.v1.Deployment(
                f"{name}-{backend.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=backend.name, namespace=ns, labels=labels),
                spec=deployment_spec(backend, ctx),
                opts=pulumi.ResourceOptions.merge(workloads, pulumi.ResourceOptions(depends_on=[account])),
            )
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{backend.name}-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=backend.name, namespace=ns, labels=labels),
                spec=disruption_budget_spec(backend),
                opts=workloads,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{backend.name}-scaler",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=backend.name, namespace=ns, labels=scaled_object_labels(backend)
                ),
                spec=scaled_object_spec(backend, ns, args.prometheus_url),
                opts=pulumi.ResourceOptions.merge(scaled, pulumi.ResourceOptions(depends_on=[deployment])),
            )
            if not single:
                targets.append(
                    k8s.core.v1.Service(
                        f"{name}-{backend.name}-service",
                        metadata=k8s.meta.v1.ObjectMetaArgs(
                            name=backend.name, namespace=ns, labels=service_labels(service, scraped=True)
                        ),
                        spec=service_spec(service, backend_selector(backend)),
                        opts=workloads,
                    )
                )
        return targets

    def _routes(self, name: str, args: ServiceFleetArgs, services: dict[str, list[pulumi.Resource]]) -> None:
        ns = args.fleet.namespace
        gateway = args.fleet.gateway
        health = next((s for s in args.services if s.name == gateway.health_service), None)
        if health is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-route-health",
                api_version="gateway.networking.k8s.io/v1",
                kind="HTTPRoute",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="health", namespace=ns),
                spec=health_route_spec(health, FleetGateway.gateway_name, gateway.hostnames, gateway.health_path),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway.gateway, *services[health.name]]),
            )
        for route, members in route_pages(args.services).items():
            http_route = k8s.apiextensions.CustomResource(
                f"{name}-route-{route}",
                api_version="gateway.networking.k8s.io/v1",
                kind="HTTPRoute",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=route, namespace=ns),
                spec=http_route_spec(members, self.backends, FleetGateway.gateway_name, args.fleet.gateway.hostnames),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.gateway.gateway, *(s for m in members for s in services[m.name])],
                ),
            )
            for service in members:
                highest = max(b.max_replicas for b in self.backends[service.name])
                k8s.apiextensions.CustomResource(
                    f"{name}-{service.name}-traffic",
                    api_version="gateway.envoyproxy.io/v1alpha1",
                    kind="BackendTrafficPolicy",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=ns),
                    spec=traffic_policy_spec(service, route, highest),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[http_route]),
                )
