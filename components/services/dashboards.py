"""Grafana dashboards for each kind of service, as code (pure: dashboard JSON documents).

kube-prometheus-stack's Grafana loads every ConfigMap labelled `grafana_dashboard: "1"` in any
namespace (its dashboards sidecar, `searchNamespace: ALL`). One dashboard per kind, one row of
panels per signal, one series per service: request rate, p95, errors, saturation (CPU and memory
of the requests), queue depth, replicas and GPU use. GPU use comes from the DCGM exporter, which
labels each GPU with the pod using it (the scrape keeps those as `exported_*`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from components.services.scaling import LATENCY_BUCKETS, QUEUE_METRIC, REQUESTS
from settings.services import ServiceKind, ServiceSettings

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
WIDTH, HEIGHT = 12, 8


def _panel(panel_id: int, title: str, expr: str, legend: str, unit: str) -> dict[str, Any]:
    column = (panel_id - 1) % 2
    row = (panel_id - 1) // 2
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": column * WIDTH, "y": row * HEIGHT},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}],
    }


def panel_queries(
    kind: ServiceKind, services: Sequence[ServiceSettings], namespace: str
) -> list[tuple[str, str, str, str]]:
    """(title, PromQL, legend, unit) of each panel."""
    series = f'{{namespace="{namespace}",kind="{kind.value}"}}'
    errors = f'{{namespace="{namespace}",kind="{kind.value}",code=~"5.."}}'
    names = "|".join(s.name for s in services) or "none"
    containers = f'namespace="{namespace}",container=~"{names}"'
    deployments = f'namespace="{namespace}",deployment=~"({names})-.+"'
    gpus = f'{{exported_namespace="{namespace}",exported_container=~"{names}"}}'
    rate = "[5m]"
    return [
        ("Request rate", f"sum by (service) (rate({REQUESTS}{series}{rate}))", "{{service}}", "reqps"),
        (
            "p95 response time",
            f"histogram_quantile(0.95, sum by (service, le) (rate({LATENCY_BUCKETS}{series}{rate})))",
            "{{service}}",
            "s",
        ),
        (
            "Errors (5xx share)",
            f"sum by (service) (rate({REQUESTS}{errors}{rate})) / sum by (service) (rate({REQUESTS}{series}{rate}))",
            "{{service}}",
            "percentunit",
        ),
        (
            "CPU saturation (of requests)",
            f"sum by (container) (rate(container_cpu_usage_seconds_total{{{containers}}}{rate})) / sum by (container) "
            f'(kube_pod_container_resource_requests{{{containers},resource="cpu"}})',
            "{{container}}",
            "percentunit",
        ),
        (
            "Memory saturation (of requests)",
            f"sum by (container) (container_memory_working_set_bytes{{{containers}}}) / sum by (container) "
            f'(kube_pod_container_resource_requests{{{containers},resource="memory"}})',
            "{{container}}",
            "percentunit",
        ),
        ("Queue depth", f"sum by (service) ({QUEUE_METRIC}{series})", "{{service}}", "short"),
        (
            "Replicas (available)",
            f"sum by (deployment) (kube_deployment_status_replicas_available{{{deployments}}})",
            "{{deployment}}",
            "short",
        ),
        ("GPU use", f"avg by (exported_container) (DCGM_FI_DEV_GPU_UTIL{gpus})", "{{exported_container}}", "percent"),
    ]


def dashboard(kind: ServiceKind, services: Sequence[ServiceSettings], namespace: str) -> dict[str, Any]:
    """The dashboard of one kind of service."""
    panels = [
        _panel(index, title, expr, legend, unit)
        for index, (title, expr, legend, unit) in enumerate(panel_queries(kind, services, namespace), start=1)
    ]
    return {
        "uid": f"sophia-services-{kind.value}",
        "title": f"Sophia services: {kind.value}",
        "description": f"The {kind.value} services of the fleet: " + ", ".join(s.name for s in services),
        "tags": ["sophia", "services", kind.value],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def dashboard_json(kind: ServiceKind, services: Sequence[ServiceSettings], namespace: str) -> str:
    return json.dumps(dashboard(kind, services, namespace), indent=1, sort_keys=True)
