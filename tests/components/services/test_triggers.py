"""The PromQL behind every KEDA trigger, evaluated by the real `promtool` on series that cross the
plan's thresholds and series that stay under them; then the HPA's arithmetic on those values.

KEDA hands the HPA the query's value: for the queue (`AverageValue`) the HPA wants
ceil(value / threshold) replicas; for the latency (`Value`) ceil(replicas x value / threshold).
Each query sees only its own backend: the same service's canary, another pool and another service
are in the input and must not count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.services.backends import Backend, backends
from components.services.scaling import scaled_object_spec
from settings import parse_settings
from settings.services import ScalingSettings, ServiceSettings
from tests.components.services.promtool import promtool_test
from tests.helpers import stack_config

NAMESPACE = "sophia-apps"
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
SETTINGS = parse_settings(stack_config())
INSTANCE_TYPES = {pool.name: pool.instance_type for pool in SETTINGS.gpu_pools}
SAMPLES = 30


def service(name: str, scaling: ScalingSettings | None = None) -> ServiceSettings:
    found = next(s for s in SETTINGS.services if s.name == name)
    return found.model_copy(update={"scaling": scaling}) if scaling is not None else found


def trigger(backend: Backend, name: str) -> dict[str, Any]:
    spec = scaled_object_spec(backend, NAMESPACE, PROMETHEUS)
    found: dict[str, Any] = next(t for t in spec["triggers"] if t["name"] == name)
    return found


def labels(service: str, pool: str, track: str, pod: str) -> str:
    return f'namespace="{NAMESPACE}",service="{service}",pool="{pool}",track="{track}",pod="{pod}"'


def gauge(value: float) -> str:
    return f"{value:g}+0x{SAMPLES}"


def counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{SAMPLES}"


SHIFTED = ScalingSettings(queue_depth=40, p95_latency_ms=200, window="2m")


def queue_series(per_pod: float, replicas: int) -> dict[str, str]:
    """`replicas` stable pods of customer-api on business, each with `per_pod` queued; noise beside them."""
    series = {
        f"sophia_request_queue_depth{{{labels('customer-api', 'business', 'stable', f'p{i}')}}}": gauge(per_pod)
        for i in range(replicas)
    }
    series[f"sophia_request_queue_depth{{{labels('customer-api', 'business', 'next', 'canary')}}}"] = gauge(10_000)
    series[f"sophia_request_queue_depth{{{labels('billing', 'business', 'stable', 'b0')}}}"] = gauge(10_000)
    return series


@pytest.mark.parametrize("scaling", [None, SHIFTED], ids=["plan-defaults", "shifted"])
@pytest.mark.parametrize(("over", "replicas"), [(True, 3), (False, 3), (True, 1), (False, 5)])
def test_queue_trigger(scaling: ScalingSettings | None, over: bool, replicas: int, tmp_path: Path) -> None:
    stable = backends(service("customer-api", scaling), INSTANCE_TYPES)[0]
    queue = trigger(stable, "queue")
    threshold = float(queue["metadata"]["threshold"])
    assert queue["metricType"] == "AverageValue"
    assert threshold == (scaling or ScalingSettings()).queue_depth
    # Just past or just under the threshold per replica.
    per_pod = threshold + 1 if over else threshold - 1
    total = per_pod * replicas
    promtool_test(
        tmp_path,
        {"groups": []},
        queue_series(per_pod, replicas),
        exprs=[{"expr": queue["metadata"]["query"], "eval_time": "10m", "exp_samples": [{"value": total}]}],
    )
    wanted = math.ceil(total / threshold)
    assert (wanted > replicas) is over


def latency_series(within_half: int, within_limit: int, limit_seconds: float) -> dict[str, str]:
    """1,000 requests a minute to inference on ai-core: `within_half` under limit/2, `within_limit` under the limit,
    all under 2x the limit; a slow canary of another pool beside it."""

    def bucket(service: str, pool: str, track: str, le: str) -> str:
        return f'http_request_duration_seconds_bucket{{{labels(service, pool, track, "p0")},le="{le}"}}'

    series = {
        bucket("inference", "ai-core", "stable", f"{limit_seconds / 2:g}"): counter(within_half),
        bucket("inference", "ai-core", "stable", f"{limit_seconds:g}"): counter(within_limit),
        bucket("inference", "ai-core", "stable", f"{limit_seconds * 2:g}"): counter(1000),
        bucket("inference", "ai-core", "stable", "+Inf"): counter(1000),
    }
    for le in (f"{limit_seconds / 2:g}", f"{limit_seconds:g}", f"{limit_seconds * 2:g}"):
        series[bucket("inference", "data", "stable", le)] = counter(0)
    series[bucket("inference", "data", "stable", "+Inf")] = counter(1000)
    return series


@pytest.mark.parametrize("scaling", [None, SHIFTED], ids=["plan-defaults", "shifted"])
@pytest.mark.parametrize("over", [True, False], ids=["crosses", "stays-under"])
def test_latency_trigger(scaling: ScalingSettings | None, over: bool, tmp_path: Path) -> None:
    ai_core = next(b for b in backends(service("inference", scaling), INSTANCE_TYPES) if b.pool == "ai-core")
    latency = trigger(ai_core, "latency")
    limit_ms = float(latency["metadata"]["threshold"])
    window = (scaling or ScalingSettings()).window
    assert latency["metricType"] == "Value"
    assert limit_ms == (scaling or ScalingSettings()).p95_latency_ms
    assert f"[{window}]" in latency["metadata"]["query"]
    limit = limit_ms / 1000
    # Over: 90 % under the limit, so p95 sits half-way into (limit, 2 x limit]: 1.5 x the limit.
    # Under: 90 % under limit/2, all under the limit, so p95 is half-way into (limit/2, limit]: 0.75 x.
    series = latency_series(500, 900, limit) if over else latency_series(900, 1000, limit)
    expected_ms = limit_ms * (1.5 if over else 0.75)
    query = latency["metadata"]["query"]
    promtool_test(
        tmp_path,
        {"groups": []},
        series,
        exprs=[
            # To the microsecond (PromQL's interpolation leaves float noise past that) ...
            {"expr": f"round({query}, 0.001)", "eval_time": "10m", "exp_samples": [{"value": expected_ms}]},
            # ... and on which side of the threshold KEDA sees it.
            {"expr": f"({query}) > bool {limit_ms:g}", "eval_time": "10m", "exp_samples": [{"value": int(over)}]},
        ],
    )
    for replicas in (1, 2, 4):
        wanted = math.ceil(replicas * expected_ms / limit_ms)
        assert (wanted > replicas) is over


def test_no_series_reads_as_zero_and_never_wakes_a_service(tmp_path: Path) -> None:
    """A backend at zero pods exports nothing: with `ignoreNullValues` KEDA reads 0, below any activation."""
    playground = backends(service("playground"), INSTANCE_TYPES)[0]
    for name in ("queue", "latency"):
        found = trigger(playground, name)
        assert found["metadata"]["ignoreNullValues"] == "true"
        promtool_test(
            tmp_path,
            {"groups": []},
            {'up{job="other"}': gauge(1)},
            exprs=[{"expr": found["metadata"]["query"], "eval_time": "5m", "exp_samples": []}],
        )


TRIGGER_TESTS: dict[str, Callable[..., None]] = {"queue": test_queue_trigger, "latency": test_latency_trigger}


def test_every_prometheus_trigger_has_a_promtool_test() -> None:
    for backend in backends(service("customer-api"), INSTANCE_TYPES):
        spec = scaled_object_spec(backend, NAMESPACE, PROMETHEUS)
        prometheus = {t["name"] for t in spec["triggers"] if t["type"] == "prometheus"}
        assert prometheus == set(TRIGGER_TESTS)
