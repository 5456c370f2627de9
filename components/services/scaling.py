"""KEDA ScaledObjects on the plan's scaling triggers (pure: documents, no resources).

One ScaledObject per backend (a service's Deployment on one pool and track), with four triggers,
any of which scales it up (KEDA gives the HPA one metric per trigger; the HPA takes the largest
proposal):

- `cpu` and `memory`: utilisation of the requested CPU and memory (`Utilization`);
- `queue`: queued requests per replica (Prometheus, `AverageValue`: replicas = queue / threshold);
- `latency`: p95 response time in ms over the window (Prometheus, `Value`: replicas grow by p95 /
  threshold).

Up is fast (no stabilization; double or +4 pods every 15 s), down is slow (the window's
stabilization, then at most one pod or 10 % a minute). A service with `offHours` goes to zero by
KEDA's `cron` trigger: between startAt and stopAt on working days the cron trigger holds the
service at `replicas.min`; outside them nothing does (with no pods, the Prometheus series are
absent and read as 0), so KEDA scales it to zero after `cooldownPeriod`.
"""

from __future__ import annotations

from typing import Any

from components.services.backends import SERVICE_LABEL, Backend
from settings.compute import OffHoursSchedule
from settings.services import KEDA_POLLING_SECONDS, ScalingSettings

QUEUE_METRIC = "sophia_request_queue_depth"
LATENCY_BUCKETS = "http_request_duration_seconds_bucket"
REQUESTS = "http_requests_total"
POLLING_SECONDS = KEDA_POLLING_SECONDS
COOLDOWN_SECONDS = 300
SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15},
    ],
}


def selector(namespace: str, service: str, pool: str | None = None, track: str | None = None) -> str:
    """The label matchers of one service's series (the ServiceMonitor sets `service`, `pool` and `track`)."""
    matchers = [f'namespace="{namespace}"', f'service="{service}"']
    if pool is not None:
        matchers.append(f'pool="{pool}"')
    if track is not None:
        matchers.append(f'track="{track}"')
    return "{" + ",".join(matchers) + "}"


def queue_query(series: str) -> str:
    """Requests waiting in the backend's queues, summed over its replicas."""
    return f"sum({QUEUE_METRIC}{series})"


def latency_query(series: str, window: str) -> str:
    """The backend's p95 response time over `window`, in milliseconds."""
    return f"histogram_quantile(0.95, sum by (le) (rate({LATENCY_BUCKETS}{series}[{window}]))) * 1000"


def cron_window(schedule: OffHoursSchedule) -> tuple[str, str]:
    """(start, end) cron expressions of the working hours: from startAt to stopAt, on working days
    when `weekendsOff` (a window across midnight ends on the next day)."""
    start_hour, start_minute = (int(part) for part in schedule.start_at.split(":"))
    stop_hour, stop_minute = (int(part) for part in schedule.stop_at.split(":"))
    overnight = (stop_hour, stop_minute) < (start_hour, start_minute)
    start_days = "1-5" if schedule.weekends_off else "*"
    end_days = ("2-6" if overnight else "1-5") if schedule.weekends_off else "*"
    return f"{start_minute} {start_hour} * * {start_days}", f"{stop_minute} {stop_hour} * * {end_days}"


def scale_down(scaling: ScalingSettings) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": scaling.window_seconds,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 1, "periodSeconds": 60},
            {"type": "Percent", "value": 10, "periodSeconds": 60},
        ],
    }


def triggers(backend: Backend, namespace: str, prometheus_url: str) -> list[dict[str, Any]]:
    service = backend.service
    scaling = service.scaling
    series = selector(namespace, service.name, backend.pool, backend.track)
    result: list[dict[str, Any]] = [
        {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": str(scaling.cpu_percent)}},
        {
            "type": "memory",
            "name": "memory",
            "metricType": "Utilization",
            "metadata": {"value": str(scaling.memory_percent)},
        },
        {
            "type": "prometheus",
            "name": "queue",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": queue_query(series),
                "threshold": str(scaling.queue_depth),
                "ignoreNullValues": "true",
            },
        },
        {
            "type": "prometheus",
            "name": "latency",
            "metricType": "Value",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": latency_query(series, scaling.window),
                "threshold": str(scaling.p95_latency_ms),
                "ignoreNullValues": "true",
            },
        },
    ]
    if service.off_hours is not None and backend.min_replicas > 0:
        start, end = cron_window(service.off_hours)
        result.append(
            {
                "type": "cron",
                "name": "working-hours",
                "metadata": {
                    "timezone": service.off_hours.timezone,
                    "start": start,
                    "end": end,
                    "desiredReplicas": str(backend.min_replicas),
                },
            }
        )
    return result


def scaled_object_spec(backend: Backend, namespace: str, prometheus_url: str) -> dict[str, Any]:
    """The ScaledObject's spec for one backend."""
    service = backend.service
    hibernates = service.off_hours is not None
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": backend.name},
        "pollingInterval": POLLING_SECONDS,
        "cooldownPeriod": COOLDOWN_SECONDS,
        # Off-hours services and cold standbys idle at zero; KEDA brings them back (cron, demand).
        "minReplicaCount": 0 if hibernates else backend.min_replicas,
        "maxReplicaCount": backend.max_replicas,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "name": backend.name,
                "behavior": {"scaleUp": SCALE_UP, "scaleDown": scale_down(service.scaling)},
            }
        },
        "triggers": triggers(backend, namespace, prometheus_url),
    }


def scaled_object_labels(backend: Backend) -> dict[str, str]:
    return {SERVICE_LABEL: backend.service.name, "app.kubernetes.io/managed-by": "pulumi"}
