"""Every count and size has an upper bound: one past it fails at once, naming the key and the bound.

Without them `sophia:dataLayer.qdrant.clusters: 1000000000` made `make plan` (and a preview) run for
minutes while memory grew, building a billion components.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from settings import parse_settings
from settings.model import StackSettings
from tests.helpers import decoded, stack_config, with_value
from tests.settings.broken import ACCESS, DR, FAILOVER, assert_rejected, backups, data_layer, monitoring, pools
from tests.settings.test_services import SERVICE_BOUNDS
from tools import settings_doc


def _dr(**changes: Any) -> dict[str, Any]:
    return {**DR, **changes}


def _eks(**changes: Any) -> dict[str, Any]:
    return _dr(eks={**DR["eks"], **changes})


def _cache(**changes: Any) -> dict[str, Any]:
    return _dr(elasticache={**DR.get("elasticache", {}), **changes})


def _kubernetes(**changes: Any) -> dict[str, Any]:
    return {**decoded(stack_config(), "sophia:kubernetes"), **changes}


def _drrep(**changes: Any) -> dict[str, Any]:
    layer = data_layer("postgres")
    layer["postgres"]["drReplication"] = {**layer["postgres"]["drReplication"], **changes}
    return layer


_INGRESS: dict[str, Any] = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrs": ["203.0.113.0/24"]}


def _cidrs(count: int) -> list[str]:
    return [f"203.0.113.{i}/32" for i in range(count)]


def _autoscaler(**changes: Any) -> dict[str, Any]:
    return {**decoded(stack_config(), "sophia:autoscaler"), **changes}


def _pool_list(count: int) -> list[dict[str, Any]]:
    template = pools()[0]
    return [{**template, "name": f"pool-{i}"} for i in range(count)]


# (stack, config key, value one past the bound, key the error names, the bound as the message gives it)
BOUNDS: list[tuple[str, str, Any, str, str]] = [
    ("prod", "sophia:gpuPools", pools(max=101), "sophia:gpuPools[0].max", "100"),
    ("prod", "sophia:gpuPools", pools(desired=101), "sophia:gpuPools[0].desired", "100"),
    ("prod", "sophia:gpuPools", pools(min=101), "sophia:gpuPools[0].min", "100"),
    ("prod", "sophia:gpuPools", _pool_list(17), "sophia:gpuPools", "16"),
    (
        "prod",
        "sophia:autoscaler",
        _autoscaler(scaleDownUnneededMinutes=1441),
        "sophia:autoscaler.scaleDownUnneededMinutes",
        "1440",
    ),
    ("prod", "sophia:autoscaler", _autoscaler(scanIntervalSeconds=61), "sophia:autoscaler.scanIntervalSeconds", "60"),
    (
        "prod",
        "sophia:autoscaler",
        _autoscaler(scaleDownDelayAfterAddMinutes=121),
        "sophia:autoscaler.scaleDownDelayAfterAddMinutes",
        "120",
    ),
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": _cidrs(33)},
        "sophia:lambdaAccess.sshAllowedCidrs",
        "32",
    ),
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrs": ["203.0.113.0/24"]}] * 33},
        "sophia:lambdaAccess.ingress",
        "32",
    ),
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrs": _cidrs(33)}]},
        "sophia:lambdaAccess.ingress[0].cidrs",
        "32",
    ),
    ("prod", "sophia:dataLayer", data_layer("redis", masters=65), "sophia:dataLayer.redis.masters", "64"),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("redis", replicasPerMaster=6),
        "sophia:dataLayer.redis.replicasPerMaster",
        "5",
    ),
    ("prod", "sophia:dataLayer", data_layer("redis", storageGib=65537), "sophia:dataLayer.redis.storageGib", "65536"),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("postgres", readReplicas=11),
        "sophia:dataLayer.postgres.readReplicas",
        "10",
    ),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("postgres", storageGib=65537),
        "sophia:dataLayer.postgres.storageGib",
        "65536",
    ),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("qdrant", clusters=1_000_000_000),
        "sophia:dataLayer.qdrant.clusters",
        "16",
    ),
    ("prod", "sophia:dataLayer", data_layer("qdrant", clusters=17), "sophia:dataLayer.qdrant.clusters", "16"),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("qdrant", nodesPerCluster=65),
        "sophia:dataLayer.qdrant.nodesPerCluster",
        "64",
    ),
    (
        "prod",
        "sophia:dataLayer",
        data_layer("qdrant", replicationFactor=65),
        "sophia:dataLayer.qdrant.replicationFactor",
        "64",
    ),
    ("prod", "sophia:dataLayer", data_layer("qdrant", storageGib=65537), "sophia:dataLayer.qdrant.storageGib", "65536"),
    (
        "prod",
        "sophia:dataLayer",
        _drrep(allowedCidrs=_cidrs(17)),
        "sophia:dataLayer.postgres.drReplication.allowedCidrs",
        "16",
    ),
    (
        "prod",
        "sophia:dataLayer",
        _drrep(peakWalMibPerSecond=1025.0),
        "sophia:dataLayer.postgres.drReplication.peakWalMibPerSecond",
        "1024",
    ),
    (
        "prod",
        "sophia:dataLayer",
        _drrep(lagAlertSeconds=86401.0),
        "sophia:dataLayer.postgres.drReplication.lagAlertSeconds",
        "86400",
    ),
    (
        "prod",
        "sophia:kubernetes",
        _kubernetes(clientNamespaces=[f"ns-{i}" for i in range(65)]),
        "sophia:kubernetes.clientNamespaces",
        "64",
    ),
    (
        "prod",
        "sophia:kubernetes",
        _kubernetes(scratchStorage={"parameters": {f"key-{i}": "value" for i in range(17)}}),
        "sophia:kubernetes.scratchStorage.parameters",
        "16",
    ),
    ("prod", "sophia:backups", backups(retentionDays=3651), "sophia:backups.retentionDays", "3650"),
    (
        "prod",
        "sophia:monitoring",
        monitoring(restoreVerification={"staleAfterHours": 721}),
        "sophia:monitoring.restoreVerification.staleAfterHours",
        "720",
    ),
    ("prod", "sophia:monitoring", monitoring(retentionDays=366), "sophia:monitoring.retentionDays", "365"),
    (
        "prod",
        "sophia:monitoring",
        monitoring(resourceLabels={f"team-{i}": "sophia" for i in range(17)}),
        "sophia:monitoring.resourceLabels",
        "16",
    ),
    ("prod", "sophia:monitoring", monitoring(storageGib=65537), "sophia:monitoring.storageGib", "65536"),
    (
        "prod",
        "sophia:monitoring",
        monitoring(thresholds={"serviceDownMinutes": 1441}),
        "sophia:monitoring.thresholds.serviceDownMinutes",
        "1440",
    ),
    (
        "prod",
        "sophia:monitoring",
        monitoring(thresholds={"latencyP95Seconds": 86401.0}),
        "sophia:monitoring.thresholds.latencyP95Seconds",
        "86400",
    ),
    (
        "prod",
        "sophia:monitoring",
        monitoring(thresholds={"capacityHorizonDays": 91}),
        "sophia:monitoring.thresholds.capacityHorizonDays",
        "90",
    ),
    (
        "prod",
        "sophia:monitoring",
        monitoring(routing={"warningWithinMinutes": 1441}),
        "sophia:monitoring.routing.warningWithinMinutes",
        "1440",
    ),
    (
        "prod",
        "sophia:monitoring",
        monitoring(routing={"digestHours": 169}),
        "sophia:monitoring.routing.digestHours",
        "168",
    ),
    ("prod", "sophia:monthlyBudgetUsd", "10000001", "sophia:monthlyBudgetUsd", "10000000"),
    ("dr", "sophia:dr", _dr(rtoSeconds=86401), "sophia:dr.rtoSeconds", "86400"),
    ("dr", "sophia:dr", _dr(rpoSeconds=86401), "sophia:dr.rpoSeconds", "86400"),
    ("dr", "sophia:dr", _dr(auditRetentionDays=3651), "sophia:dr.auditRetentionDays", "3650"),
    ("dr", "sophia:dr", _eks(nodes=101), "sophia:dr.eks.nodes", "100"),
    ("dr", "sophia:dr", _eks(publicAccessCidrs=_cidrs(41)), "sophia:dr.eks.publicAccessCidrs", "40"),
    ("dr", "sophia:dr", _dr(restoreChecks={"staleAfterHours": 169}), "sophia:dr.restoreChecks.staleAfterHours", "168"),
    ("dr", "sophia:dr", _dr(restoreChecks={"countTolerance": 1.0}), "sophia:dr.restoreChecks.countTolerance", "1"),
    (
        "dr",
        "sophia:dr",
        _eks(operatorArns=[f"arn:aws:iam::123456789012:role/operator-{i}" for i in range(21)]),
        "sophia:dr.eks.operatorArns",
        "20",
    ),
    ("dr", "sophia:dr", _cache(shards=501), "sophia:dr.elasticache.shards", "500"),
    ("dr", "sophia:dr", _cache(replicasPerShard=6), "sophia:dr.elasticache.replicasPerShard", "5"),
    ("dr", "sophia:dr", _cache(snapshotRetentionDays=36), "sophia:dr.elasticache.snapshotRetentionDays", "35"),
    (
        "dr",
        "sophia:dr",
        _dr(failover={**FAILOVER, "failureThreshold": 11}),
        "sophia:dr.failover.failureThreshold",
        "10",
    ),
]


BOUNDS += [
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "ingress": [{**_INGRESS, "fromPort": 65536}]},
        "sophia:lambdaAccess.ingress[0].fromPort",
        "65535",
    ),
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "ingress": [{**_INGRESS, "toPort": 65536}]},
        "sophia:lambdaAccess.ingress[0].toPort",
        "65535",
    ),
    (
        "prod",
        "sophia:lambdaAccess",
        {**ACCESS, "ingress": [{**_INGRESS, "description": "x" * 129}]},
        "sophia:lambdaAccess.ingress[0].description",
        "128",
    ),
    ("prod", "sophia:lambdaFallbackRegions", ["us-west-2"] * 17, "sophia:lambdaFallbackRegions", "16"),
    (
        "prod",
        "sophia:monitoring",
        monitoring(restoreVerification={"countTolerance": 1.0}),
        "sophia:monitoring.restoreVerification.countTolerance",
        "1",
    ),
    ("dr", "sophia:dr", _dr(replicationLagAlertSeconds=86401.0), "sophia:dr.replicationLagAlertSeconds", "86400"),
    (
        "dr",
        "sophia:dr",
        _dr(failover={**FAILOVER, "healthCheckIntervalSeconds": 31}),
        "sophia:dr.failover.healthCheckIntervalSeconds",
        "30",
    ),
    ("dr", "sophia:dr", _dr(failover={**FAILOVER, "ttlSeconds": 301}), "sophia:dr.failover.ttlSeconds", "300"),
    (
        "dr",
        "sophia:dr",
        _dr(availabilityZones=["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]),
        "sophia:dr.availabilityZones",
        "3",
    ),
]
# Every alert threshold: durations up to a day, shares strictly below 1.
BOUNDS += [
    ("prod", "sophia:monitoring", monitoring(thresholds={key: past}), f"sophia:monitoring.thresholds.{key}", bound)
    for key, past, bound in [
        *[
            (f"{name}Minutes", 1441, "1440")
            for name in ("latency", "errorRate", "memory", "cpu", "disk", "cacheHit", "interService")
        ],
        *[
            (name, 1.0, "1")
            for name in (
                "errorRate",
                "memoryUsage",
                "cpuUsage",
                "diskUsage",
                "cacheHitRatio",
                "interServiceSuccess",
                "costVariance",
            )
        ],
    ]
]

BOUNDS += SERVICE_BOUNDS


@pytest.mark.parametrize(("stack", "key", "value", "expected_key", "bound"), BOUNDS, ids=[b[3] for b in BOUNDS])
def test_one_past_each_bound_names_the_key_and_the_bound(
    stack: str, key: str, value: Any, expected_key: str, bound: str
) -> None:
    message = assert_rejected(key, value, expected_key, stack)
    assert bound in message


def test_the_bounds_admit_the_plans_largest_sizes() -> None:
    # The plan's ceiling: 50 instances on demand across the pools; 100 per pool leaves headroom.
    config = with_value(stack_config(), "sophia:gpuPools", pools(min=0, desired=50, max=100))
    assert parse_settings(config).gpu_pools[0].max == 100


def test_every_number_and_list_setting_has_an_upper_bound_and_a_case_above() -> None:
    """Walks the models, so a new count, size or list cannot be added without its bound and its case."""
    covered = {re.sub(r"\[\d+\]", "[]", case[3]) for case in BOUNDS}
    for prefix, model in settings_doc._sections(StackSettings, ""):
        for name, field in model.model_fields.items():
            key = f"{prefix}.{field.alias or name}" if prefix else f"sophia:{field.alias or name}"
            kind = settings_doc._type_name(field.annotation)
            upper = [b for b in settings_doc._bounds(field) if b.startswith(("<", "at most"))]
            if kind.startswith(("integer", "number", "list")):
                assert upper, f"{key} ({kind}) has no upper bound"
            if (upper and "characters" not in upper[0]) or key.endswith("description"):
                assert key in covered, f"{key} is bounded ({upper}) but no case shows the bound"
