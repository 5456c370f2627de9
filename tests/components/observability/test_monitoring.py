"""Monitoring as the stacks render it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from components.observability.alertmanager_config import RECEIVERS_SECRET, render_alertmanager_config
from components.observability.monitoring import CHART_VERSION
from settings import parse_settings
from tests.helpers import stack_config
from tools.harness import StackRun, run_stack
from tools.redact import is_secret

RELEASE = "kubernetes:helm.sh/v3:Release"
CUSTOM = "kubernetes:monitoring.coreos.com/v1:"


def custom_resources(run: StackRun, kind: str) -> dict[str, Mapping[str, Any]]:
    return {r.name: r.inputs for r in run.by_type(CUSTOM + kind)}


def test_chart_is_pinned_and_selects_every_monitor_and_rule() -> None:
    run = run_stack("prod")
    release = run.named("sophia-prod-monitoring-stack")
    assert release.type == RELEASE
    assert release.inputs["chart"] == "kube-prometheus-stack"
    assert release.inputs["version"] == CHART_VERSION
    spec = release.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["retention"] == "15d"


def test_alertmanager_config_is_the_rendered_routing_and_holds_no_secret() -> None:
    run = run_stack("prod")
    release = run.named("sophia-prod-monitoring-stack")
    settings = parse_settings(stack_config("prod"))
    assert settings.monitoring is not None
    values = release.inputs["values"]["alertmanager"]
    assert values["config"] == render_alertmanager_config(settings.monitoring.routing)
    assert values["alertmanagerSpec"]["secrets"] == [RECEIVERS_SECRET]
    receivers = run.named("sophia-prod-monitoring-receivers")
    assert is_secret(receivers.inputs["stringData"])


def test_rules_use_the_stack_budget_and_pools() -> None:
    rules = custom_resources(run_stack("prod"), "PrometheusRule")["sophia-prod-monitoring-rules"]["spec"]
    text = yaml.safe_dump(rules)
    info = next(g for g in rules["groups"] if g["name"] == "sophia.info")
    pools = sorted(r["labels"]["pool"] for r in info["rules"] if r.get("alert") == "GpuPoolAtMax")
    assert pools == ["ai-core", "business", "data", "dev"]
    # prod: 7.91/h planned = 189.84/day; 15,000/month = 493.15/day, 10 % of it = 49.32.
    assert "* 24 - 189.84) > 49.32" in text


def test_each_store_exporter_has_one_service_monitor_matching_one_service() -> None:
    run = run_stack("prod")
    # The service fleet's own monitors are tested with the fleet (tests/components/services/).
    monitors = {
        name: m
        for name, m in custom_resources(run, "ServiceMonitor").items()
        if name.startswith("sophia-prod-monitoring-")
    }
    assert {"redis", "qdrant-0", "qdrant-1", "qdrant-2", "pushgateway", "dcgm-exporter"} == {
        m["metadata"]["name"] for m in monitors.values()
    }
    services = run.by_type("kubernetes:core/v1:Service")
    for monitor in monitors.values():
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matched = [
            s
            for s in services
            if s.inputs["metadata"]["namespace"] == monitor["metadata"]["namespace"]
            and wanted.items() <= s.inputs["metadata"].get("labels", {}).items()
        ]
        assert len(matched) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in matched[0].inputs["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in ports


def test_qdrant_is_scraped_over_tls_with_the_read_only_key() -> None:
    endpoint = custom_resources(run_stack("prod"), "ServiceMonitor")["sophia-prod-monitoring-qdrant-1"]["spec"][
        "endpoints"
    ][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["authorization"]["credentials"] == {"name": "qdrant-1-keys", "key": "read-only-api-key"}
    assert endpoint["tlsConfig"]["serverName"] == "qdrant-1.sophia-data.svc"


def test_gpu_exporter_runs_only_on_pool_nodes_and_tolerates_their_taint() -> None:
    run = run_stack("prod")
    daemon = run.named("sophia-prod-monitoring-dcgm-exporter").inputs["spec"]["template"]["spec"]
    terms = daemon["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"] == [{"key": "sophia.ai/pool", "operator": "Exists"}]
    assert daemon["tolerations"] == [{"key": "sophia.ai/pool", "operator": "Exists", "effect": "NoSchedule"}]


def test_grafana_password_is_generated_and_secret() -> None:
    run = run_stack("prod")
    assert is_secret(run.named("sophia-prod-monitoring-grafana-admin").inputs["stringData"])
    assert run.named("sophia-prod-monitoring-grafana-password").inputs["length"] == 32.0
