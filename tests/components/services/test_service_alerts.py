"""Each service's alerts, proven with the real `promtool`: series just past the plan's threshold fire
exactly when the duration is up (not one evaluation earlier), series just short of it stay silent;
for the plan's thresholds and a shifted set. The platform-wide HTTP alerts leave the fleet's
namespace to these, so one condition pages once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from components.observability.alert_rules import CostFacts, render_rule_groups
from components.services.alerts import ALERTS, render_service_rules
from settings import parse_settings
from settings.observability import AlertThresholds
from tests.components.services.promtool import promtool_check, promtool_test
from tests.helpers import stack_config

NAMESPACE = "sophia-apps"
SERVICES = parse_settings(stack_config()).services
BILLING = next(s for s in SERVICES if s.name == "billing")
PLAYGROUND = next(s for s in SERVICES if s.name == "playground")
DEFAULTS = AlertThresholds()
SHIFTED = AlertThresholds(
    error_rate=0.2, error_rate_minutes=4, latency_p95_seconds=0.25, latency_minutes=3, service_down_minutes=6
)
SAMPLES = 60
RATE_LEAD = 1  # a rate needs two samples: expressions over counters first hold one minute in


def counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{SAMPLES}"


def gauge(value: float) -> str:
    return f"{value:g}+0x{SAMPLES}"


@dataclass(frozen=True)
class Scenario:
    firing: dict[str, str]
    quiet: dict[str, str]
    fires_at_minutes: int


def series(metric: str, service: str = "billing", namespace: str = NAMESPACE, **extra: str) -> str:
    labels = {"namespace": namespace, "service": service, "kind": "business", "pool": "business", **extra}
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def error_rate(t: AlertThresholds) -> Scenario:
    def requests(errors: float) -> dict[str, str]:
        return {
            series("http_requests_total", code="500"): counter(errors),
            series("http_requests_total", code="200"): counter(1000 - errors),
        }

    # Just past and just under the share of 5xx, out of 1,000 requests a minute.
    limit = t.error_rate * 1000
    return Scenario(requests(limit + 10), requests(limit - 10), RATE_LEAD + t.error_rate_minutes)


def slow_responses(t: AlertThresholds) -> Scenario:
    limit = t.latency_p95_seconds

    def buckets(within_limit: int) -> dict[str, str]:
        return {
            series("http_request_duration_seconds_bucket", le=f"{limit / 2:g}"): counter(500),
            series("http_request_duration_seconds_bucket", le=f"{limit:g}"): counter(within_limit),
            series("http_request_duration_seconds_bucket", le=f"{limit * 2:g}"): counter(1000),
            series("http_request_duration_seconds_bucket", le="+Inf"): counter(1000),
        }

    return Scenario(buckets(940), buckets(960), RATE_LEAD + t.latency_minutes)


def unavailable(t: AlertThresholds) -> Scenario:
    def available(count: int) -> dict[str, str]:
        name = f'kube_deployment_status_replicas_available{{namespace="{NAMESPACE}",deployment="billing-business"}}'
        return {name: gauge(count)}

    return Scenario(available(0), available(1), t.service_down_minutes)


SCENARIOS = {
    "ServiceHighErrorRate": error_rate,
    "ServiceSlowResponses": slow_responses,
    "ServiceUnavailable": unavailable,
}


def rules(t: AlertThresholds) -> dict[str, Any]:
    return render_service_rules([BILLING, PLAYGROUND], NAMESPACE, t)


def expected(document: dict[str, Any], alert: str, labels: dict[str, str]) -> dict[str, Any]:
    """The firing alert as promtool reports it: labels, and annotations with their templates expanded."""
    rule = next(
        r
        for g in document["groups"]
        for r in g["rules"]
        if r.get("alert") == alert and r["labels"].get("service", labels.get("service")) == labels.get("service")
    )

    def expand(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {
        "exp_labels": {"alertname": alert, **labels},
        "exp_annotations": {key: expand(value) for key, value in rule["annotations"].items()},
    }


@pytest.mark.parametrize("thresholds", [DEFAULTS, SHIFTED], ids=["plan-defaults", "shifted"])
@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_past_threshold_and_duration_only(alert: str, thresholds: AlertThresholds, tmp_path: Path) -> None:
    scenario = SCENARIOS[alert](thresholds)
    document = rules(thresholds)
    fired = [expected(document, alert, {"severity": "critical", "service": "billing", "kind": "business"})]
    promtool_test(
        tmp_path,
        document,
        scenario.firing,
        alerts=[
            {"eval_time": f"{scenario.fires_at_minutes}m", "alertname": alert, "exp_alerts": fired},
            {"eval_time": f"{scenario.fires_at_minutes - 1}m", "alertname": alert, "exp_alerts": []},
        ],
    )
    promtool_test(
        tmp_path,
        document,
        scenario.quiet,
        alerts=[
            {"eval_time": f"{t}m", "alertname": alert, "exp_alerts": []}
            for t in (scenario.fires_at_minutes, scenario.fires_at_minutes + 5)
        ],
    )


def test_every_service_is_covered_and_hibernating_ones_may_be_at_zero() -> None:
    document = render_service_rules(SERVICES, NAMESPACE, DEFAULTS)
    covered: dict[str, set[str]] = {}
    for rule in document["groups"][0]["rules"]:
        covered.setdefault(rule["labels"]["service"], set()).add(rule["alert"])
    for service in SERVICES:
        expected = set(ALERTS) - ({"ServiceUnavailable"} if service.off_hours else set())
        assert covered[service.name] == expected, service.name
        assert all(
            r["labels"]["kind"] == service.kind.value
            for r in document["groups"][0]["rules"]
            if r["labels"]["service"] == service.name
        )


def test_the_rules_pass_promtool_check(tmp_path: Path) -> None:
    output = promtool_check(tmp_path, render_service_rules(SERVICES, NAMESPACE, DEFAULTS))
    assert "SUCCESS" in output


def test_one_condition_pages_once(tmp_path: Path) -> None:
    """With the fleet's namespace named, the platform-wide HighErrorRate stays silent for it and still
    fires for another namespace's service; the fleet's own rule fires for the fleet's service."""
    platform = render_rule_groups(DEFAULTS, [], CostFacts(Decimal(1), Decimal(1000)), [], 30, fleet_namespace=NAMESPACE)
    document = {"groups": [*platform["groups"], *rules(DEFAULTS)["groups"]]}
    failing = {
        series("http_requests_total", code="500"): counter(500),
        series("http_requests_total", code="200"): counter(500),
        series("http_requests_total", service="legacy", namespace="apps", code="500"): counter(500),
        series("http_requests_total", service="legacy", namespace="apps", code="200"): counter(500),
    }
    at = f"{RATE_LEAD + DEFAULTS.error_rate_minutes}m"
    promtool_test(
        tmp_path,
        document,
        failing,
        alerts=[
            {
                "eval_time": at,
                "alertname": "HighErrorRate",
                "exp_alerts": [
                    expected(
                        document, "HighErrorRate", {"severity": "critical", "namespace": "apps", "service": "legacy"}
                    )
                ],
            },
            {
                "eval_time": at,
                "alertname": "ServiceHighErrorRate",
                "exp_alerts": [
                    expected(
                        document,
                        "ServiceHighErrorRate",
                        {"severity": "critical", "service": "billing", "kind": "business"},
                    )
                ],
            },
        ],
    )
