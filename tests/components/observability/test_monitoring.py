"""Monitoring as the stacks render it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from components.data.placement import PLATFORM_RELABELING
from components.observability.alertmanager_config import RECEIVERS_SECRET, render_alertmanager_config
from components.observability.monitoring import CHART_VERSION
from settings import parse_settings
from tests.helpers import decoded, stack_config
from tools.harness import StackRun, run_stack
from tools.redact import is_secret

RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
CRONJOB = "kubernetes:batch/v1:CronJob"
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


def test_what_a_managed_or_k3s_cluster_does_not_expose_is_neither_scraped_nor_alerted_on() -> None:
    values = run_stack("prod").named("sophia-prod-monitoring-stack").inputs["values"]
    for component in ("kubeControllerManager", "kubeScheduler", "kubeProxy", "kubeEtcd"):
        assert values[component] == {"enabled": False}
    rules = values["defaultRules"]["rules"]
    assert not any(rules[r] for r in ("etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeProxy"))


def test_every_target_of_the_platform_is_labelled_for_service_down() -> None:
    run = run_stack("prod")
    # The service fleet's monitors are not: its services have their own availability alert
    # (ServiceUnavailable, docs/services.md), and one pod of a scaled service down is not a page.
    platform = {n: m for n, m in custom_resources(run, "ServiceMonitor").items() if "-services-" not in n}
    for monitor in platform.values():
        for endpoint in monitor["spec"]["endpoints"]:
            assert PLATFORM_RELABELING in endpoint["relabelings"], monitor["metadata"]["name"]
    (cluster,) = [c for c in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")]
    assert cluster.inputs["spec"]["monitoring"]["podMonitorRelabelings"] == [PLATFORM_RELABELING]


def test_only_the_restore_checks_can_push_results() -> None:
    run = run_stack("prod")
    gateway = run.named("sophia-prod-monitoring-pushgateway").inputs["spec"]["template"]["spec"]
    assert "--web.config.file=/etc/pushgateway/web.yml" in gateway["containers"][0]["args"]
    assert is_secret(run.named("sophia-prod-monitoring-pushgateway-auth").inputs["stringData"])
    policy = run.named("sophia-prod-monitoring-pushgateway-network").inputs["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "sophia-data"}},
            "podSelector": {"matchLabels": {"sophia.ai/restore-check": "true"}},
        },
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
    ]
    jobs = {r.name: r.inputs["spec"]["jobTemplate"]["spec"]["template"] for r in run.by_type(CRONJOB)}
    for name, template in jobs.items():
        labelled = template["metadata"]["labels"].get("sophia.ai/restore-check") == "true"
        holds_password = any(
            (e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == "pushgateway-push"
            for c in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]
            for e in c.get("env", [])
        )
        assert labelled == holds_password == name.endswith("-restore-check"), name


def test_with_the_clusters_own_prometheus_stack_only_our_objects_are_rendered() -> None:
    run = run_stack(
        "prod",
        config_overrides={
            "sophia:operators": '{"prometheusStack": "existing"}',
            "sophia:monitoring": '{"resourceLabels": {"release": "kube-prometheus-stack"}}',
            # The service fleet's triggers then query the cluster's Prometheus.
            "sophia:fleet": json.dumps({**decoded(stack_config(), "sophia:fleet"), "prometheusUrl": PROMETHEUS}),
        },
    )
    assert [r.name for r in run.by_type(RELEASE) if "monitoring" in r.name] == []
    (routing,) = run.by_type("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig")
    assert routing.inputs["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    rules = custom_resources(run, "PrometheusRule")["sophia-prod-monitoring-rules"]
    assert rules["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    # The fleet's monitors and rules carry the labels the cluster's Prometheus selects, and its
    # triggers query that Prometheus.
    assert custom_resources(run, "PrometheusRule")["sophia-prod-services-alerts"]["metadata"]["labels"] == {
        "release": "kube-prometheus-stack"
    }
    fleet_monitor = custom_resources(run, "ServiceMonitor")["sophia-prod-services-billing-monitor"]
    assert fleet_monitor["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    (scaler,) = [
        r.inputs
        for r in run.by_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
        if r.inputs["metadata"]["name"] == "billing-business"
    ]
    assert scaler["spec"]["triggers"][2]["metadata"]["serverAddress"] == PROMETHEUS
