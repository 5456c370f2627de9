"""A service's Kubernetes objects (pure: Args and documents, no resources).

Per backend: a Deployment on its pool's nodes (node selector and toleration `sophia.ai/pool`),
rolling out with `maxUnavailable: 0`, with startup, readiness and liveness probes on the health
path, spread over nodes and zones, under the restricted Pod Security profile, requests equal to
limits; and a PodDisruptionBudget. Per service: its ServiceAccount (no API token), a Service over
its stable pods, a NetworkPolicy that admits only the gateway's proxies, the services declared as
its callers and Prometheus, and a ServiceMonitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi_kubernetes as k8s

from components.compute.cloud_init import POOL_LABEL
from components.kube import container_security, dns_egress, namespace_selector, pod_security
from components.services.backends import BACKEND_POOL_LABEL, KIND_LABEL, SERVICE_LABEL, TRACK_LABEL, Backend
from settings.services import STARTUP_SECONDS, ServiceSettings

SERVICE_UID = 10001
HTTP_PORT_NAME = "http"
SCRAPE_LABEL = "sophia.ai/scrape"
GPU_RESOURCE = "nvidia.com/gpu"
PROBE_PERIOD_SECONDS = 5
# Endpoints are removed from the gateway before the process is asked to stop.
PRE_STOP_SECONDS = 5
TMP_SIZE = "256Mi"
# The Envoy proxies Envoy Gateway runs for a Gateway carry these labels (envoyproxy/gateway
# internal/gatewayapi: OwningGatewayNameLabel, OwningGatewayNamespaceLabel).
OWNING_GATEWAY_NAME = "gateway.envoyproxy.io/owning-gateway-name"
OWNING_GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"


@dataclass(frozen=True)
class FleetContext:
    """Where the fleet runs and what its pods talk to: the same for every service of a stack."""

    namespace: str
    environment: str
    gateway_name: str
    gateway_namespace: str
    """Namespace of the Gateway; its Envoy proxies run in `proxy_namespace`."""
    proxy_namespace: str
    monitoring_namespace: str
    data_namespace: str
    """The stores' namespace: services may open their client ports (their NetworkPolicies decide who gets in)."""
    tracing_namespace: str
    otlp_endpoint: str
    """OTLP/gRPC endpoint of the fleet's collector (https)."""
    tracing_ca_secret: str
    """Secret (key ca.crt) with the CA of the collector's certificate."""
    sample_ratio: float
    gpu_runtime_class: str | None
    """RuntimeClass of GPU pods (`nvidia` on the k3s pools; None where the default runtime has the GPUs)."""


DATA_PORTS = (5432, 6379, 6333, 6334)
OTLP_PORT = 4317


def deployment_spec(backend: Backend, ctx: FleetContext) -> k8s.apps.v1.DeploymentSpecArgs:
    """No `replicas`: KEDA's HPA owns the replica count, and a `pulumi up` must not reset it."""
    service = backend.service
    labels = backend.labels
    resources = service.resources
    amounts: dict[str, str] = {"cpu": resources.cpu, "memory": resources.memory}
    if resources.gpus:
        amounts[GPU_RESOURCE] = str(resources.gpus)
    http = k8s.core.v1.HTTPGetActionArgs(path=service.health_path, port=HTTP_PORT_NAME)
    startup_failures = STARTUP_SECONDS[service.kind] // PROBE_PERIOD_SECONDS
    container = k8s.core.v1.ContainerArgs(
        name=service.name,
        image=backend.image,
        ports=[k8s.core.v1.ContainerPortArgs(name=HTTP_PORT_NAME, container_port=service.port)],
        env=_environment(backend, ctx),
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=amounts, limits=dict(amounts)),
        startup_probe=k8s.core.v1.ProbeArgs(
            http_get=http, period_seconds=PROBE_PERIOD_SECONDS, failure_threshold=startup_failures
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=http, period_seconds=PROBE_PERIOD_SECONDS, timeout_seconds=2, failure_threshold=3
        ),
        liveness_probe=k8s.core.v1.ProbeArgs(http_get=http, period_seconds=10, timeout_seconds=3, failure_threshold=3),
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=PRE_STOP_SECONDS))
        ),
        security_context=container_security(),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 - the pod's own emptyDir
            k8s.core.v1.VolumeMountArgs(name="tracing-ca", mount_path="/etc/sophia/tracing", read_only=True),
        ],
    )
    selector = {SERVICE_LABEL: service.name, BACKEND_POOL_LABEL: backend.pool, TRACK_LABEL: backend.track}
    return k8s.apps.v1.DeploymentSpecArgs(
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
        revision_history_limit=5,
        strategy=k8s.apps.v1.DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
        ),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=service.name,
                automount_service_account_token=False,
                security_context=pod_security(SERVICE_UID),
                node_selector={POOL_LABEL: backend.pool},
                tolerations=[
                    k8s.core.v1.TolerationArgs(
                        key=POOL_LABEL, operator="Equal", value=backend.pool, effect="NoSchedule"
                    )
                ],
                runtime_class_name=ctx.gpu_runtime_class if resources.gpus else None,
                topology_spread_constraints=[
                    _spread(selector, "kubernetes.io/hostname"),
                    _spread(selector, "topology.kubernetes.io/zone"),
                ],
                termination_grace_period_seconds=30 + PRE_STOP_SECONDS,
                containers=[container],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=TMP_SIZE)
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="tracing-ca",
                        secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=ctx.tracing_ca_secret),
                    ),
                ],
            ),
        ),
    )


def _spread(selector: dict[str, str], key: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
    # ScheduleAnyway: a pool may have fewer nodes (or zones) than replicas; spread as far as it goes.
    return k8s.core.v1.TopologySpreadConstraintArgs(
        max_skew=1,
        topology_key=key,
        when_unsatisfiable="ScheduleAnyway",
        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
        match_label_keys=["pod-template-hash"],
    )


def _environment(backend: Backend, ctx: FleetContext) -> list[k8s.core.v1.EnvVarArgs]:
    service = backend.service
    attributes = ",".join(
        [
            "service.namespace=sophia",
            f"deployment.environment.name={ctx.environment}",
            f"sophia.service.kind={service.kind.value}",
            f"sophia.pool={backend.pool}",
            f"sophia.track={backend.track}",
        ]
    )
    values = {
        "PORT": str(service.port),
        "OTEL_SERVICE_NAME": service.name,
        "OTEL_RESOURCE_ATTRIBUTES": attributes,
        "OTEL_EXPORTER_OTLP_ENDPOINT": ctx.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/sophia/tracing/ca.crt",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{ctx.sample_ratio:g}",
        "OTEL_METRICS_EXPORTER": "none",  # metrics are scraped (the metric contract), not pushed
        "OTEL_LOGS_EXPORTER": "none",
    }
    return [k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in values.items()]


def service_spec(service: ServiceSettings, selector: dict[str, str]) -> k8s.core.v1.ServiceSpecArgs:
    return k8s.core.v1.ServiceSpecArgs(
        type="ClusterIP",
        selector=selector,
        ports=[
            k8s.core.v1.ServicePortArgs(
                name=HTTP_PORT_NAME, port=service.port, target_port=HTTP_PORT_NAME, app_protocol="http"
            )
        ],
    )


def stable_selector(service: ServiceSettings) -> dict[str, str]:
    """The service-wide Service: the stable release on every pool (what callers reach)."""
    return {SERVICE_LABEL: service.name, TRACK_LABEL: "stable"}


def backend_selector(backend: Backend) -> dict[str, str]:
    return {SERVICE_LABEL: backend.service.name, BACKEND_POOL_LABEL: backend.pool, TRACK_LABEL: backend.track}


def disruption_budget_spec(backend: Backend) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    """Drains and upgrades take one pod of a backend at a time; a crash-looping pod never blocks them."""
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=backend_selector(backend)),
        unhealthy_pod_eviction_policy="AlwaysAllow",
    )


def network_policy_spec(
    service: ServiceSettings, callees: Sequence[ServiceSettings], ctx: FleetContext
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """In: the gateway's proxies, the declared callers and Prometheus, on the service port. Out: DNS,
    the data stores' ports, the trace collector, and the services that list this one as a caller."""
    port = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=service.port)]
    proxies = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": ctx.proxy_namespace}
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={OWNING_GATEWAY_NAME: ctx.gateway_name, OWNING_GATEWAY_NAMESPACE: ctx.gateway_namespace}
        ),
    )
    ingress = [
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[proxies], ports=port),
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[namespace_selector(ctx.monitoring_namespace)], ports=port
        ),
    ]
    if service.callers:
        ingress.append(
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[_services_peer(service.callers)],
                ports=port,
            )
        )
    egress = [
        dns_egress(),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[namespace_selector(ctx.data_namespace)],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in DATA_PORTS],
        ),
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[namespace_selector(ctx.tracing_namespace)],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=OTLP_PORT)],
        ),
    ]
    for callee in callees:
        egress.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_services_peer([callee.name])],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=callee.port)],
            )
        )
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={SERVICE_LABEL: service.name}),
        policy_types=["Ingress", "Egress"],
        ingress=ingress,
        egress=egress,
    )


def _services_peer(names: Sequence[str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(
            match_expressions=[
                k8s.meta.v1.LabelSelectorRequirementArgs(key=SERVICE_LABEL, operator="In", values=sorted(names))
            ]
        )
    )


def service_monitor_spec(service: ServiceSettings, namespace: str) -> dict[str, Any]:
    """Scrapes each pod once (through the one scraped Service of each backend), labelling the series with
    the service, its kind, pool and track: the names the scaling triggers and the alerts use."""
    relabel = [
        ("__meta_kubernetes_pod_label_sophia_ai_service", "service"),
        ("__meta_kubernetes_pod_label_sophia_ai_service_kind", "kind"),
        ("__meta_kubernetes_pod_label_sophia_ai_service_pool", "pool"),
        ("__meta_kubernetes_pod_label_sophia_ai_track", "track"),
    ]
    return {
        "selector": {"matchLabels": {SERVICE_LABEL: service.name, SCRAPE_LABEL: "true"}},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": HTTP_PORT_NAME,
                "path": "/metrics",
                "interval": "30s",
                "relabelings": [
                    {"sourceLabels": [source], "targetLabel": target, "action": "replace"} for source, target in relabel
                ],
            }
        ],
    }


def service_labels(service: ServiceSettings, *, scraped: bool) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": service.name,
        "app.kubernetes.io/part-of": "sophia",
        "app.kubernetes.io/managed-by": "pulumi",
        SERVICE_LABEL: service.name,
        KIND_LABEL: service.kind.value,
    }
    if scraped:
        labels[SCRAPE_LABEL] = "true"
    return labels
