"""The rendered alert rules, proven with the real `promtool` (Debian `prometheus`).

Each alert gets synthetic series just past its threshold (it must fire exactly when its duration
is up, and not one evaluation earlier) and just short of it (it must stay silent). The scenarios
are built from the thresholds, and run for the plan's defaults and for a shifted set, so a rule
that ignored its setting would fail.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability.alert_rules import KSM_POOL_LABEL, CostFacts, PoolFacts, render_rule_groups
from settings.observability import AlertThresholds
from tests.tools_on_path import require_tool

STORES = ("postgres", "redis", "qdrant")
POOL = PoolFacts("ai-core", Decimal("2.00"), 4)
PLANNED = CostFacts(planned_gpu_usd_per_hour=Decimal("4.00"), monthly_budget_usd=Decimal("15000"))
STALE_HOURS = 30
DEFAULTS = AlertThresholds()
SHIFTED = AlertThresholds(
    service_down_minutes=4,
    latency_p95_seconds=0.25,
    latency_minutes=3,
    error_rate=0.2,
    error_rate_minutes=4,
    memory_usage=0.75,
    memory_minutes=6,
    cpu_usage=0.6,
    cpu_minutes=5,
    disk_usage=0.7,
    disk_minutes=8,
    cache_hit_ratio=0.5,
    cache_hit_minutes=4,
    inter_service_success=0.99,
    inter_service_minutes=2,
    cost_variance=0.2,
    capacity_horizon_days=3,
)
SAMPLES = 240  # four hours at one-minute intervals: longer than any duration under test


@dataclass(frozen=True)
class Scenario:
    """Series that breach the threshold (`firing`) and series just inside it (`quiet`)."""

    firing: dict[str, str]
    quiet: dict[str, str]
    fires_at_minutes: int
    """When the alert must start firing: when the expression first holds, plus `for`."""
    labels: dict[str, str]
    """The alert's labels apart from alertname and severity."""
    interval: str = "1m"
    cost: CostFacts = PLANNED
    quiet_cost: CostFacts | None = None
    clock_based: bool = False
    """The expression compares with time(): the quiet series is only quiet at the firing moment."""


def counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{SAMPLES}"


def gauge(value: float, samples: int = SAMPLES) -> str:
    return f"{value:g}+0x{samples}"


def falling(start: float, per_minute: float) -> str:
    return f"{start:g}-{per_minute:g}x{SAMPLES}"


# A rate needs two samples: expressions over counters first hold one minute in.
RATE_LEAD = 1


def service_down(t: AlertThresholds) -> Scenario:
    series = 'up{job="redis-headless",instance="10.0.0.5:9121",sophia_platform="true"}'
    # What a managed or k3s cluster does not expose is down for good, and never pages.
    unexposed = {
        f'up{{job="{job}",instance="10.0.0.{n}:10257"}}': gauge(0)
        for n, job in enumerate(("kube-controller-manager", "kube-scheduler", "kube-etcd", "kube-proxy"))
    }
    return Scenario(
        {series: gauge(0), **unexposed},
        {series: gauge(1), **unexposed},
        t.service_down_minutes,
        {"job": "redis-headless", "instance": "10.0.0.5:9121", "sophia_platform": "true"},
    )


def slow_responses(t: AlertThresholds) -> Scenario:
    limit = t.latency_p95_seconds
    base = 'http_request_duration_seconds_bucket{namespace="apps",service="api",le="%s"}'

    def buckets(within_limit: int) -> dict[str, str]:
        # 1,000 requests a minute: half under limit/2, `within_limit` under the limit, all under 2x.
        return {
            base % f"{limit / 2:g}": counter(500),
            base % f"{limit:g}": counter(within_limit),
            base % f"{limit * 2:g}": counter(1000),
            base % "+Inf": counter(1000),
        }

    # 94 % under the limit puts p95 above it; 96 % puts it below.
    return Scenario(buckets(940), buckets(960), RATE_LEAD + t.latency_minutes, {"namespace": "apps", "service": "api"})


def high_error_rate(t: AlertThresholds) -> Scenario:
    def requests(errors: float) -> dict[str, str]:
        return {
            'http_requests_total{namespace="apps",service="api",code="500"}': counter(errors),
            'http_requests_total{namespace="apps",service="api",code="200"}': counter(1000 - errors),
        }

    return Scenario(
        requests(1000 * t.error_rate + 1),
        requests(1000 * t.error_rate - 1),
        RATE_LEAD + t.error_rate_minutes,
        {"namespace": "apps", "service": "api"},
    )


def memory_pressure(t: AlertThresholds) -> Scenario:
    labels = '{instance="node-1",job="node-exporter"}'

    def memory(used: float) -> dict[str, str]:
        return {
            f"node_memory_MemTotal_bytes{labels}": gauge(10000),
            f"node_memory_MemAvailable_bytes{labels}": gauge(round(10000 * (1 - used))),
        }

    return Scenario(
        memory(t.memory_usage + 0.001),
        memory(t.memory_usage - 0.001),
        t.memory_minutes,
        {"instance": "node-1", "job": "node-exporter"},
    )


def high_cpu(t: AlertThresholds) -> Scenario:
    series = 'node_cpu_seconds_total{instance="node-1",cpu="0",mode="idle"}'
    return Scenario(
        {series: counter(60 * (1 - t.cpu_usage - 0.01))},
        {series: counter(60 * (1 - t.cpu_usage + 0.01))},
        RATE_LEAD + t.cpu_minutes,
        {"instance": "node-1"},
    )


def node_disk_filling(t: AlertThresholds) -> Scenario:
    labels = '{instance="node-1",device="/dev/sda1",fstype="ext4",mountpoint="/"}'

    def disk(used: float) -> dict[str, str]:
        return {
            f"node_filesystem_size_bytes{labels}": gauge(10000),
            f"node_filesystem_avail_bytes{labels}": gauge(round(10000 * (1 - used))),
        }

    return Scenario(
        disk(t.disk_usage + 0.001),
        disk(t.disk_usage - 0.001),
        t.disk_minutes,
        {"instance": "node-1", "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"},
    )


VOLUME = {"namespace": "sophia-data", "persistentvolumeclaim": "data-redis-0"}
VOLUME_SELECTOR = '{namespace="sophia-data",persistentvolumeclaim="data-redis-0"}'


def volume_filling(t: AlertThresholds) -> Scenario:
    def volume(used: float) -> dict[str, str]:
        return {
            f"kubelet_volume_stats_capacity_bytes{VOLUME_SELECTOR}": gauge(10000),
            f"kubelet_volume_stats_used_bytes{VOLUME_SELECTOR}": gauge(round(10000 * used)),
        }

    return Scenario(volume(t.disk_usage + 0.001), volume(t.disk_usage - 0.001), t.disk_minutes, VOLUME)


def low_cache_hit_ratio(t: AlertThresholds) -> Scenario:
    labels = '{namespace="sophia-data",service="redis",instance="redis-0"}'

    def cache(hits: float) -> dict[str, str]:
        return {
            f"redis_keyspace_hits_total{labels}": counter(hits),
            f"redis_keyspace_misses_total{labels}": counter(1000 - hits),
        }

    return Scenario(
        cache(1000 * t.cache_hit_ratio - 1),
        cache(1000 * t.cache_hit_ratio + 1),
        RATE_LEAD + t.cache_hit_minutes,
        {"namespace": "sophia-data", "service": "redis"},
    )


def inter_service_failures(t: AlertThresholds) -> Scenario:
    def calls(succeeded: float) -> dict[str, str]:
        return {
            'sophia_service_calls_total{source="api",target="ranker",outcome="success"}': counter(succeeded),
            'sophia_service_calls_total{source="api",target="ranker",outcome="error"}': counter(1000 - succeeded),
        }

    return Scenario(
        calls(1000 * t.inter_service_success - 1),
        calls(1000 * t.inter_service_success + 1),
        RATE_LEAD + t.inter_service_minutes,
        {"source": "api", "target": "ranker"},
    )


def restore_failed(_t: AlertThresholds) -> Scenario:
    series = 'sophia_restore_verification_success{job="pushgateway",store="postgres"}'
    return Scenario({series: gauge(0)}, {series: gauge(1)}, 0, {"job": "pushgateway", "store": "postgres"})


def restore_stale(_t: AlertThresholds) -> Scenario:
    # promtool's clock starts at the Unix epoch, so time() at the check is the check's offset.
    check = (STALE_HOURS + 2) * 3600
    series = 'sophia_restore_verification_last_success_timestamp_seconds{job="pushgateway",store="redis"}'
    limit = STALE_HOURS * 3600
    return Scenario(
        {series: gauge(check - limit - 60, 40)},
        {series: gauge(check - limit + 60, 40)},
        (STALE_HOURS + 2) * 60,
        {"job": "pushgateway", "store": "redis"},
        interval="1h",
        clock_based=True,
    )


def restore_missing(_t: AlertThresholds) -> Scenario:
    def reported(stores: tuple[str, ...]) -> dict[str, str]:
        metric = "sophia_restore_verification_last_success_timestamp_seconds"
        return {f'{metric}{{job="pushgateway",store="{store}"}}': gauge(1, 40) for store in stores}

    # postgres and redis report; qdrant never has.
    return Scenario(
        reported(("postgres", "redis")),
        reported(STORES),
        STALE_HOURS * 60,
        {"store": "qdrant"},
        interval="1h",
    )


def gpu_cost_variance(t: AlertThresholds) -> Scenario:
    # Three nodes run where two were planned: the day costs 3 x 2.00 x 24 = 144 against 96 planned.
    nodes = {f'kube_node_labels{{node="gpu-{i}",{KSM_POOL_LABEL}="ai-core"}}': gauge(1) for i in range(3)}
    difference = Decimal(48)

    def budget_allowing(allowed: Decimal) -> CostFacts:
        # allowed = variance x budget x 24 / 730, solved for the budget.
        monthly = allowed * 730 / (Decimal(str(t.cost_variance)) * 24)
        return CostFacts(PLANNED.planned_gpu_usd_per_hour, monthly)

    return Scenario(
        nodes,
        nodes,
        60,
        {},
        cost=budget_allowing(difference - Decimal("0.5")),
        quiet_cost=budget_allowing(difference + Decimal("0.5")),
    )


def volume_full_soon(t: AlertThresholds) -> Scenario:
    # Falling 1 byte a minute, the volume empties within the horizon once under horizon/60 bytes.
    runway = t.capacity_horizon_days * 86400 / 60
    series = f"kubelet_volume_stats_available_bytes{VOLUME_SELECTOR}"
    return Scenario(
        {series: falling(runway - 1, 1)},
        {series: falling(runway + 500, 1)},
        RATE_LEAD + 60,
        VOLUME,
    )


def gpu_pool_at_max(_t: AlertThresholds) -> Scenario:
    def nodes(count: int) -> dict[str, str]:
        return {f'kube_node_labels{{node="gpu-{i}",{KSM_POOL_LABEL}="ai-core"}}': gauge(1) for i in range(count)}

    return Scenario(nodes(POOL.max), nodes(POOL.max - 1), 60, {"pool": "ai-core"})


DR_NAT = "198.51.100.10"
DR_LAG_SECONDS = 5.0
LAG = "cnpg_pg_stat_replication_replay_lag_seconds"


def dr_replication_lag(_t: AlertThresholds) -> Scenario:
    dr = f'{LAG}{{usename="streaming_replica",client_addr="{DR_NAT}",application_name="postgres-1"}}'
    # A local replica far behind is not the DR replica: it must not count.
    local = f'{LAG}{{usename="streaming_replica",client_addr="10.42.0.7",application_name="postgres-2"}}'
    return Scenario(
        {dr: gauge(DR_LAG_SECONDS + 0.5), local: gauge(0.1)},
        {dr: gauge(DR_LAG_SECONDS - 0.5), local: gauge(100)},
        1,
        {},
    )


def dr_replica_disconnected(_t: AlertThresholds) -> Scenario:
    dr = f'{LAG}{{usename="streaming_replica",client_addr="{DR_NAT}",application_name="postgres-1"}}'
    local = f'{LAG}{{usename="streaming_replica",client_addr="10.42.0.7",application_name="postgres-2"}}'
    return Scenario({local: gauge(0.1)}, {dr: gauge(0.2), local: gauge(0.1)}, 5, {"usename": "streaming_replica"})


GUARD = 'kube_deployment_status_replicas_available{namespace="sophia-data",deployment="postgres-failover-guard"}'
OTHER = 'kube_deployment_status_replicas_available{namespace="sophia-data",deployment="other"}'


def failover_guard_down(_t: AlertThresholds) -> Scenario:
    # Another Deployment at zero is not the guard.
    return Scenario({GUARD: gauge(0), OTHER: gauge(1)}, {GUARD: gauge(1), OTHER: gauge(0)}, 2, {})


SCENARIOS: dict[str, Callable[[AlertThresholds], Scenario]] = {
    "ServiceDown": service_down,
    "SlowResponses": slow_responses,
    "HighErrorRate": high_error_rate,
    "MemoryPressure": memory_pressure,
    "HighCpu": high_cpu,
    "NodeDiskFilling": node_disk_filling,
    "VolumeFilling": volume_filling,
    "LowCacheHitRatio": low_cache_hit_ratio,
    "InterServiceFailures": inter_service_failures,
    "RestoreVerificationFailed": restore_failed,
    "RestoreVerificationStale": restore_stale,
    "RestoreVerificationMissing": restore_missing,
    "GpuCostVariance": gpu_cost_variance,
    "VolumeFullSoon": volume_full_soon,
    "GpuPoolAtMax": gpu_pool_at_max,
    "DrReplicationLag": dr_replication_lag,
    "DrReplicaDisconnected": dr_replica_disconnected,
    "FailoverGuardDown": failover_guard_down,
}


def rules_for(thresholds: AlertThresholds, cost: CostFacts = PLANNED) -> dict[str, Any]:
    return render_rule_groups(
        thresholds,
        [POOL],
        cost,
        STORES,
        STALE_HOURS,
        dr_addresses=[f"{DR_NAT}/32"],
        dr_lag_seconds=DR_LAG_SECONDS,
        failover_guard_namespace="sophia-data",
    )


def alert_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for g in document["groups"] for r in g["rules"] if r.get("alert") == name)


def expected_annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    def expand(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {key: expand(value) for key, value in rule["annotations"].items()}


def promtool_test(
    tmp: Path, rules: dict[str, Any], scenario_series: dict[str, str], interval: str, checks: list[Any]
) -> None:
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules))
    document = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": interval,
                "input_series": [{"series": s, "values": v} for s, v in scenario_series.items()],
                "alert_rule_test": checks,
            }
        ],
    }
    (tmp / "test.yaml").write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", "test.yaml"], cwd=tmp, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("thresholds", [DEFAULTS, SHIFTED], ids=["plan-defaults", "shifted"])
@pytest.mark.parametrize("alert", sorted(SCENARIOS))
def test_alert_fires_past_threshold_and_duration_only(alert: str, thresholds: AlertThresholds, tmp_path: Path) -> None:
    scenario = SCENARIOS[alert](thresholds)
    rules = rules_for(thresholds, scenario.cost)
    rule = alert_named(rules, alert)
    labels = {"alertname": alert, "severity": rule["labels"]["severity"], **scenario.labels}
    firing = {"exp_labels": labels, "exp_annotations": expected_annotations(rule, scenario.labels)}
    step = 60 if scenario.interval == "1h" else 1
    checks = [{"eval_time": f"{scenario.fires_at_minutes}m", "alertname": alert, "exp_alerts": [firing]}]
    if scenario.fires_at_minutes >= step:
        # One evaluation before its duration is up, the alert is still only pending.
        before = scenario.fires_at_minutes - step
        checks.append({"eval_time": f"{before}m", "alertname": alert, "exp_alerts": []})
    promtool_test(tmp_path, rules, scenario.firing, scenario.interval, checks)

    quiet_rules = rules_for(thresholds, scenario.quiet_cost or scenario.cost)
    quiet_times = [scenario.fires_at_minutes] + ([] if scenario.clock_based else [scenario.fires_at_minutes + step])
    silent = [{"eval_time": f"{t}m", "alertname": alert, "exp_alerts": []} for t in quiet_times]
    promtool_test(tmp_path, quiet_rules, scenario.quiet, scenario.interval, silent)


def test_every_alert_has_a_scenario() -> None:
    alerts = {r["alert"] for g in rules_for(DEFAULTS)["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == set(SCENARIOS)


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules_for(DEFAULTS)))
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_severity_summary_and_runbook() -> None:
    for group in rules_for(DEFAULTS)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in ("critical", "warning", "info")
                assert rule["annotations"]["summary"]
                assert rule["annotations"]["runbook_url"]
                assert group["name"].endswith(rule["labels"]["severity"])
