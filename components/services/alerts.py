"""Alert rules for each service of the fleet (pure: a Prometheus rule-file document).

The plan's critical thresholds (`sophia:monitoring.thresholds`), one rule per service and condition,
labelled with the service and its kind:

- `ServiceHighErrorRate`: more than `errorRate` of its responses are 5xx for `errorRateMinutes`;
- `ServiceSlowResponses`: its p95 response time is above `latencyP95Seconds` for `latencyMinutes`;
- `ServiceUnavailable`: none of its pods is ready for `serviceDownMinutes` (services with
  `offHours` are left out: they are at zero every night by design).

The platform-wide `HighErrorRate` and `SlowResponses` leave the fleet's namespace to these, so one
condition pages once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.observability.alert_rules import RATE_WINDOW, alert
from components.services.scaling import LATENCY_BUCKETS, REQUESTS, selector
from settings.observability import AlertThresholds
from settings.services import ServiceSettings

GROUP = "sophia.services"
ALERTS = ("ServiceHighErrorRate", "ServiceSlowResponses", "ServiceUnavailable")


def error_rate_expr(series: str, with_errors: str) -> str:
    return f"sum(rate({REQUESTS}{with_errors}[{RATE_WINDOW}])) / sum(rate({REQUESTS}{series}[{RATE_WINDOW}]))"


def service_rules(service: ServiceSettings, namespace: str, t: AlertThresholds) -> list[dict[str, Any]]:
    series = selector(namespace, service.name)
    errors = series[:-1] + ',code=~"5.."}'
    labels = {"service": service.name, "kind": service.kind.value}
    rules = [
        alert(
            "ServiceHighErrorRate",
            "critical",
            f"{error_rate_expr(series, errors)} > {t.error_rate:g}",
            t.error_rate_minutes,
            f"{service.name} answers more than {t.error_rate * 100:g} % of requests with 5xx",
            description=f"Error rate above {t.error_rate * 100:g} % for more than {t.error_rate_minutes} minutes.",
            **labels,
        ),
        alert(
            "ServiceSlowResponses",
            "critical",
            f"histogram_quantile(0.95, sum by (le) (rate({LATENCY_BUCKETS}{series}[{RATE_WINDOW}]))) "
            f"> {t.latency_p95_seconds:g}",
            t.latency_minutes,
            f"{service.name} p95 response time is above {t.latency_p95_seconds:g} s",
            description=f"p95 over {t.latency_p95_seconds:g} s for more than {t.latency_minutes} minutes.",
            **labels,
        ),
    ]
    if service.off_hours is None:
        deployments = f'namespace="{namespace}",deployment=~"{service.name}-.+"'
        rules.append(
            alert(
                "ServiceUnavailable",
                "critical",
                f"sum(kube_deployment_status_replicas_available{{{deployments}}}) == 0",
                t.service_down_minutes,
                f"{service.name} has no ready replica",
                description=f"No pod of {service.name} has been ready for {t.service_down_minutes} minutes.",
                **labels,
            )
        )
    return rules


def render_service_rules(services: Sequence[ServiceSettings], namespace: str, t: AlertThresholds) -> dict[str, Any]:
    """The rule-file document (`{"groups": [...]}`): the spec of the fleet's PrometheusRule."""
    return {"groups": [{"name": GROUP, "rules": [r for s in services for r in service_rules(s, namespace, t)]}]}
