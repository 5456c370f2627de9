"""The plan's alert table as Prometheus rule groups (pure: no resources).

The same document is the `spec` of the `PrometheusRule` the monitoring component applies and the
file `promtool check rules` / `promtool test rules` read, so what is tested is what is deployed.
Every threshold and duration comes from `sophia:monitoring.thresholds`.

Metric contract the services follow (docs/monitoring.md): HTTP servers export the Prometheus
client defaults `http_requests_total{code}` and `http_request_duration_seconds_bucket`;
service-to-service calls are counted in `sophia_service_calls_total{source, target, outcome}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.compute.cloud_init import POOL_LABEL
from components.data.placement import PLATFORM_LABEL
from policies.catalog import HOURS_PER_MONTH
from settings.observability import AlertThresholds

# kube-state-metrics exposes node label `sophia.ai/pool` as `label_sophia_ai_pool`.
KSM_POOL_LABEL = "label_" + POOL_LABEL.replace(".", "_").replace("/", "_")
RESTORE_SUCCESS = "sophia_restore_verification_success"
# ServiceDown pages for the platform's own scrape targets only (`PLATFORM_LABEL`): a managed or k3s
# cluster does not expose its control plane (controller-manager, scheduler, etcd, kube-proxy).
RESTORE_LAST_SUCCESS = "sophia_restore_verification_last_success_timestamp_seconds"
GPU_POOL_NODES = "sophia:gpu_pool_nodes:count"
GPU_COST_HOURLY = "sophia:gpu_cost_usd_per_hour"
# Rate windows: long enough for 4 scrapes at the chart's 30 s interval, short enough to react.
RATE_WINDOW = "5m"
HTTP_BY = "namespace, service"


@dataclass(frozen=True)
class PoolFacts:
    """What the cost and capacity rules need to know about one GPU pool."""

    name: str
    price_usd_per_hour: Decimal
    max: int


@dataclass(frozen=True)
class CostFacts:
    """The stack's planned GPU spend and its budget."""

    planned_gpu_usd_per_hour: Decimal
    monthly_budget_usd: Decimal


def _alert(
    name: str, severity: str, expr: str, minutes: int, summary: str, *, description: str, **labels: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": f"{minutes}m",
        "labels": {"severity": severity, **labels},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"https://github.com/sophia-ai/sophia-infra/blob/main/README.md#alert-{name.lower()}",
        },
    }


alert = _alert
"""The shape of every alert (the service fleet's rules use it too)."""


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def critical_rules(t: AlertThresholds, fleet_namespace: str | None = None) -> list[dict[str, Any]]:
    """Page immediately. The service fleet's own rules (components/services/alerts.py) cover the HTTP
    series of `fleet_namespace`: the platform-wide HTTP rules leave them out, so each condition pages once."""
    others = f'{{namespace!="{fleet_namespace}"}}' if fleet_namespace else ""
    errors = f'{{code=~"5..",namespace!="{fleet_namespace}"}}' if fleet_namespace else '{code=~"5.."}'
    return [
        _alert(
            "ServiceDown",
            "critical",
            f'up{{{PLATFORM_LABEL}="true"}} == 0',
            t.service_down_minutes,
            "{{ $labels.job }} target {{ $labels.instance }} is down",
            description=f"Prometheus has failed to scrape it for more than {t.service_down_minutes} minutes.",
        ),
        _alert(
            "SlowResponses",
            "critical",
            f"histogram_quantile(0.95, sum by ({HTTP_BY}, le) "
            f"(rate(http_request_duration_seconds_bucket{others}[{RATE_WINDOW}]))) > {t.latency_p95_seconds:g}",
            t.latency_minutes,
            "{{ $labels.service }} p95 response time is above " + f"{t.latency_p95_seconds:g} s",
            description=f"p95 over {t.latency_p95_seconds:g} s for more than {t.latency_minutes} minutes.",
        ),
        _alert(
            "HighErrorRate",
            "critical",
            f"sum by ({HTTP_BY}) (rate(http_requests_total{errors}[{RATE_WINDOW}])) "
            f"/ sum by ({HTTP_BY}) (rate(http_requests_total{others}[{RATE_WINDOW}])) > {t.error_rate:g}",
            t.error_rate_minutes,
            "{{ $labels.service }} answers more than " + _pct(t.error_rate) + " of requests with 5xx",
            description=f"Error rate above {_pct(t.error_rate)} for more than {t.error_rate_minutes} minutes.",
        ),
        _alert(
            "MemoryPressure",
            "critical",
            f"1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes > {t.memory_usage:g}",
            t.memory_minutes,
            "{{ $labels.instance }} memory is over " + _pct(t.memory_usage) + " used",
            description=f"Memory above {_pct(t.memory_usage)} for more than {t.memory_minutes} minutes; "
            "the OOM killer is next.",
        ),
    ]


def warning_rules(t: AlertThresholds, stale_after_hours: int) -> list[dict[str, Any]]:
    """Answer within the routing's warning window (30 minutes by default)."""
    hits = f"sum by (namespace, service) (rate(redis_keyspace_hits_total[{RATE_WINDOW}]))"
    misses = f"sum by (namespace, service) (rate(redis_keyspace_misses_total[{RATE_WINDOW}]))"
    succeeded = f'sum by (source, target) (rate(sophia_service_calls_total{{outcome="success"}}[{RATE_WINDOW}]))'
    calls = f"sum by (source, target) (rate(sophia_service_calls_total[{RATE_WINDOW}]))"
    return [
        _alert(
            "HighCpu",
            "warning",
            f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{RATE_WINDOW}])) > {t.cpu_usage:g}',
            t.cpu_minutes,
            "{{ $labels.instance }} CPU is over " + _pct(t.cpu_usage) + " busy",
            description=f"CPU above {_pct(t.cpu_usage)} for more than {t.cpu_minutes} minutes.",
        ),
        _alert(
            "NodeDiskFilling",
            "warning",
            '1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} '
            f"/ node_filesystem_size_bytes > {t.disk_usage:g}",
            t.disk_minutes,
            "{{ $labels.instance }} {{ $labels.mountpoint }} is over " + _pct(t.disk_usage) + " full",
            description=f"Disk above {_pct(t.disk_usage)} for more than {t.disk_minutes} minutes.",
        ),
        _alert(
            "VolumeFilling",
            "warning",
            f"kubelet_volume_stats_used_bytes / kubelet_volume_stats_capacity_bytes > {t.disk_usage:g}",
            t.disk_minutes,
            "Volume {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is over "
            + _pct(t.disk_usage)
            + " full",
            description=f"A data volume above {_pct(t.disk_usage)} for more than {t.disk_minutes} minutes.",
        ),
        _alert(
            "LowCacheHitRatio",
            "warning",
            f"{hits} / ({hits} + {misses}) < {t.cache_hit_ratio:g}",
            t.cache_hit_minutes,
            "{{ $labels.service }} cache hit ratio is under " + _pct(t.cache_hit_ratio),
            description=f"Redis hit ratio below {_pct(t.cache_hit_ratio)} for more than {t.cache_hit_minutes} minutes.",
        ),
        _alert(
            "InterServiceFailures",
            "warning",
            f"{succeeded} / {calls} < {t.inter_service_success:g}",
            t.inter_service_minutes,
            "Calls from {{ $labels.source }} to {{ $labels.target }} succeed less than "
            + _pct(t.inter_service_success)
            + " of the time",
            description=f"Success below {_pct(t.inter_service_success)} "
            f"for more than {t.inter_service_minutes} minutes.",
        ),
        _alert(
            "RestoreVerificationFailed",
            "warning",
            f"{RESTORE_SUCCESS} == 0",
            0,
            "The last restore test of {{ $labels.store }} failed",
            description="The newest backup could not be restored and verified; see the restore job's log.",
        ),
        _alert(
            "RestoreVerificationStale",
            "warning",
            f"time() - {RESTORE_LAST_SUCCESS} > {stale_after_hours * 3600}",
            0,
            "No restore test of {{ $labels.store }} has succeeded for " + f"{stale_after_hours} hours",
            description="The restore CronJob is not running or keeps failing before it reports.",
        ),
    ]


def restore_absent_rules(stores: Sequence[str], stale_after_hours: int) -> list[dict[str, Any]]:
    """A store whose restore job has never reported is as stale as one that stopped."""
    return [
        _alert(
            "RestoreVerificationMissing",
            "warning",
            f'absent({RESTORE_LAST_SUCCESS}{{store="{store}"}})',
            stale_after_hours * 60,
            "No restore test of {{ $labels.store }} has ever reported",
            description="The restore CronJob has not pushed its result to the Pushgateway.",
            store=store,
        )
        for store in stores
    ]


def _dr_lag_series(dr_addresses: Sequence[str]) -> str:
    """The DR replica's replay lag as the primary reports it: it streams from a DR NAT address."""
    # PromQL strings take Go escapes: a literal dot in the regex is written \\. in the query.
    source = "|".join(address.split("/")[0].replace(".", "\\\\.") for address in dr_addresses)
    return f'cnpg_pg_stat_replication_replay_lag_seconds{{usename="streaming_replica",client_addr=~"{source}"}}'


def dr_lag_rules(dr_addresses: Sequence[str], lag_seconds: float) -> list[dict[str, Any]]:
    """Critical: the DR replica is further behind than the recovery point objective allows."""
    if not dr_addresses:
        return []
    return [
        _alert(
            "DrReplicationLag",
            "critical",
            f"max({_dr_lag_series(dr_addresses)}) > {lag_seconds:g}",
            1,
            f"The DR replica is more than {lag_seconds:g} s behind the primary",
            description="Writes since then would be lost in a failover: past the recovery point objective.",
        )
    ]


def dr_disconnected_rules(dr_addresses: Sequence[str]) -> list[dict[str, Any]]:
    """Warning: the DR replica is not streaming at all."""
    if not dr_addresses:
        return []
    return [
        _alert(
            "DrReplicaDisconnected",
            "warning",
            f"absent({_dr_lag_series(dr_addresses)})",
            5,
            "The DR replica is not streaming from the primary",
            description="No DR standby in pg_stat_replication: the DR region is falling behind.",
        )
    ]


# The failover guard's Deployment (components/data/failover_guard.py names it too).
FAILOVER_GUARD = "postgres-failover-guard"


def failover_guard_rules(namespace: str | None) -> list[dict[str, Any]]:
    """Critical: the primary's failover guard is not running. Nothing renews the lease then, and
    nothing would fence the primary if DR took over: a health-check blip could split the brain."""
    if namespace is None:
        return []
    series = f'kube_deployment_status_replicas_available{{namespace="{namespace}",deployment="{FAILOVER_GUARD}"}}'
    return [
        _alert(
            "FailoverGuardDown",
            "critical",
            f"max({series}) < 1 or absent({series})",
            2,
            "The PostgreSQL failover guard is not running",
            description="Nothing renews the primary's lease or fences it: restore the guard before anything else.",
        )
    ]


def info_rules(t: AlertThresholds, pools: Sequence[PoolFacts], cost: CostFacts) -> list[dict[str, Any]]:
    """Batched into the daily digest."""
    daily_budget = cost.monthly_budget_usd * 24 / HOURS_PER_MONTH
    planned_daily = cost.planned_gpu_usd_per_hour * 24
    allowed = Decimal(str(t.cost_variance)) * daily_budget
    rules: list[dict[str, Any]] = [
        _alert(
            "GpuCostVariance",
            "info",
            f"abs(avg_over_time({GPU_COST_HOURLY}[1d]) * 24 - {planned_daily:.2f}) > {allowed:.2f}",
            60,
            "GPU spend over the last day differs from the plan by more than "
            + _pct(t.cost_variance)
            + " of the daily budget",
            description=f"Planned ${planned_daily:.2f}/day, budget ${daily_budget:.2f}/day; "
            "check pools left scaled up, or capacity lost.",
        ),
        _alert(
            "VolumeFullSoon",
            "info",
            f"predict_linear(kubelet_volume_stats_available_bytes[6h], {t.capacity_horizon_days * 86400}) < 0",
            60,
            "Volume {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} fills within "
            + f"{t.capacity_horizon_days} days",
            description="At the last 6 hours' growth the volume runs out; grow it (storageGib) or add shards.",
        ),
    ]
    rules += [
        _alert(
            "GpuPoolAtMax",
            "info",
            f'{GPU_POOL_NODES}{{pool="{pool.name}"}} >= {pool.max}',
            60,
            f"GPU pool {pool.name} has run at its max ({pool.max}) for an hour",
            description="Raise the pool's max in sophia:gpuPools if demand is steady.",
            pool=pool.name,
        )
        for pool in pools
    ]
    return rules


def recording_rules(pools: Sequence[PoolFacts]) -> list[dict[str, Any]]:
    """Running GPU nodes per pool (from their node label) and what they cost per hour."""
    rules: list[dict[str, Any]] = []
    for pool in pools:
        rules.append(
            {
                "record": GPU_POOL_NODES,
                "expr": f'count(kube_node_labels{{{KSM_POOL_LABEL}="{pool.name}"}})',
                "labels": {"pool": pool.name},
            }
        )
    for pool in pools:
        rules.append(
            {
                "record": "sophia:gpu_pool_cost_usd_per_hour",
                "expr": f'{GPU_POOL_NODES}{{pool="{pool.name}"}} * {pool.price_usd_per_hour}',
                "labels": {"pool": pool.name},
            }
        )
    # `or vector(0)`: with no GPU node at all the spend is zero, not missing.
    rules.append({"record": GPU_COST_HOURLY, "expr": "sum(sophia:gpu_pool_cost_usd_per_hour) or vector(0)"})
    return rules


def render_rule_groups(
    thresholds: AlertThresholds,
    pools: Sequence[PoolFacts],
    cost: CostFacts,
    stores: Sequence[str],
    stale_after_hours: int,
    *,
    dr_addresses: Sequence[str] = (),
    dr_lag_seconds: float = 5.0,
    failover_guard_namespace: str | None = None,
    fleet_namespace: str | None = None,
) -> dict[str, Any]:
    """The Prometheus rule-file document: `{"groups": [...]}`."""
    return {
        "groups": [
            {
                "name": "sophia.critical",
                "rules": critical_rules(thresholds, fleet_namespace)
                + dr_lag_rules(dr_addresses, dr_lag_seconds)
                + failover_guard_rules(failover_guard_namespace),
            },
            {
                "name": "sophia.warning",
                "rules": warning_rules(thresholds, stale_after_hours)
                + restore_absent_rules(stores, stale_after_hours)
                + dr_disconnected_rules(dr_addresses),
            },
            # Rules in a group run in order: the recorded cost is current when the info alerts read it.
            {"name": "sophia.info", "rules": recording_rules(pools) + info_rules(thresholds, pools, cost)},
        ]
    }
