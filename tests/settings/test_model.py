"""Each rule, broken alone on a valid prod config, fails with the key it concerns (no mocks needed)."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, parse_settings
from settings.base import Environment
from tests.helpers import decoded, stack_config, with_value


def pools(**changes: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = decoded(stack_config(), "sophia:gpuPools")
    result[0].update(changes)
    return result


def data_layer(store: str, **changes: Any) -> dict[str, Any]:
    layer: dict[str, Any] = decoded(stack_config(), "sophia:dataLayer")
    layer[store].update(changes)
    return layer


def backups(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = decoded(stack_config(), "sophia:backups") | changes
    return {k: v for k, v in result.items() if v is not None}


def monitoring(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = decoded(stack_config(), "sophia:monitoring") | changes
    return result


ACCESS: dict[str, Any] = {"sshPublicKey": "ssh-ed25519 AAAAC3Nza ops", "sshAllowedCidrs": ["203.0.113.0/24"]}
DR: dict[str, Any] = decoded(stack_config("dr"), "sophia:dr")
FAILOVER: dict[str, Any] = DR["failover"]

BROKEN: list[tuple[str, str, Any, str]] = [
    ("min above max", "sophia:gpuPools", pools(min=12, desired=12), "sophia:gpuPools[0].desired"),
    ("min above desired", "sophia:gpuPools", pools(min=3, desired=2), "sophia:gpuPools[0].min"),
    ("desired above max", "sophia:gpuPools", pools(desired=11), "sophia:gpuPools[0].desired"),
    ("negative min", "sophia:gpuPools", pools(min=-1), "sophia:gpuPools[0].min"),
    ("zero max", "sophia:gpuPools", pools(min=0, desired=0, max=0), "sophia:gpuPools[0].max"),
    ("fractional count", "sophia:gpuPools", pools(desired=2.5), "sophia:gpuPools[0].desired"),
    ("count as text", "sophia:gpuPools", pools(desired="2"), "sophia:gpuPools[0].desired"),
    ("unknown type", "sophia:gpuPools", pools(instanceType="gpu_1x_gh2000"), "sophia:gpuPools[0].instanceType"),
    ("misspelt pool key", "sophia:gpuPools", pools(maxx=3), "sophia:gpuPools[0].maxx"),
    ("bad pool name", "sophia:gpuPools", pools(name="AI Core"), "sophia:gpuPools[0].name"),
    ("duplicate pool", "sophia:gpuPools", pools(name="business"), "sophia:gpuPools"),
    (
        "bad time zone",
        "sophia:gpuPools",
        pools(offHours={"timezone": "Mars/Olympus", "stopAt": "20:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.timezone",
    ),
    (
        "bad clock",
        "sophia:gpuPools",
        pools(offHours={"timezone": "UTC", "stopAt": "24:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.stopAt",
    ),
    (
        "same clock",
        "sophia:gpuPools",
        pools(offHours={"timezone": "UTC", "stopAt": "07:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.startAt",
    ),
    ("unknown region", "sophia:lambdaRegion", "us-nowhere-1", "sophia:lambdaRegion"),
    ("unknown fallback", "sophia:lambdaFallbackRegions", ["us-west-2", "eu-mars-1"], "sophia:lambdaFallbackRegions"),
    ("fallback repeats primary", "sophia:lambdaFallbackRegions", ["us-west-1"], "sophia:lambdaFallbackRegions"),
    ("two redis masters", "sophia:dataLayer", data_layer("redis", masters=2), "sophia:dataLayer.redis.masters"),
    (
        "negative replicas",
        "sophia:dataLayer",
        data_layer("redis", replicasPerMaster=-1),
        "sophia:dataLayer.redis.replicasPerMaster",
    ),
    (
        "qdrant rf above nodes",
        "sophia:dataLayer",
        data_layer("qdrant", replicationFactor=4),
        "sophia:dataLayer.qdrant.replicationFactor",
    ),
    ("zero storage", "sophia:dataLayer", data_layer("postgres", storageGib=0), "sophia:dataLayer.postgres.storageGib"),
    (
        "misspelt store key",
        "sophia:dataLayer",
        data_layer("postgres", readReplica=2),
        "sophia:dataLayer.postgres.readReplica",
    ),
    ("zero budget", "sophia:monthlyBudgetUsd", "0", "sophia:monthlyBudgetUsd"),
    ("negative budget", "sophia:monthlyBudgetUsd", "-5", "sophia:monthlyBudgetUsd"),
    ("text budget", "sophia:monthlyBudgetUsd", "lots", "sophia:monthlyBudgetUsd"),
    ("infinite budget", "sophia:monthlyBudgetUsd", "Infinity", "sophia:monthlyBudgetUsd"),
    ("unknown environment", "sophia:environment", "staging", "sophia:environment"),
    ("misspelt top-level key", "sophia:monthlyBudget", "100", "sophia:monthlyBudget"),
    ("public cidr", "sophia:dr", {**DR, "vpcCidr": "8.8.0.0/16"}, "sophia:dr.vpcCidr"),
    ("host bits in cidr", "sophia:dr", {**DR, "vpcCidr": "10.40.0.1/16"}, "sophia:dr.vpcCidr"),
    ("cidr too wide", "sophia:dr", {**DR, "vpcCidr": "10.0.0.0/8"}, "sophia:dr.vpcCidr"),
    ("not a cidr", "sophia:dr", {**DR, "vpcCidr": "10.40.0.0/33"}, "sophia:dr.vpcCidr"),
    ("unknown aws region", "sophia:dr", {**DR, "awsRegion": "us-east-9"}, "sophia:dr.awsRegion"),
    ("zero rto", "sophia:dr", {**DR, "rtoSeconds": 0}, "sophia:dr.rtoSeconds"),
    ("failover slower than rto", "sophia:dr", {**DR, "failover": {**FAILOVER, "ttlSeconds": 30}}, "sophia:dr.failover"),
    (
        "30 s checks blow the rto",
        "sophia:dr",
        {**DR, "failover": {**FAILOVER, "healthCheckIntervalSeconds": 30}},
        "sophia:dr.failover",
    ),
    (
        "check interval route 53 lacks",
        "sophia:dr",
        {**DR, "failover": {**FAILOVER, "healthCheckIntervalSeconds": 15}},
        "sophia:dr.failover.healthCheckIntervalSeconds",
    ),
    (
        "lag alert above rpo",
        "sophia:dr",
        {**DR, "replicationLagAlertSeconds": 6},
        "sophia:dr.replicationLagAlertSeconds",
    ),
    (
        "two zones",
        "sophia:dr",
        {**DR, "availabilityZones": ["us-east-1a", "us-east-1b"]},
        "sophia:dr.availabilityZones",
    ),
    (
        "zone of another region",
        "sophia:dr",
        {**DR, "availabilityZones": ["us-east-1a", "us-east-1b", "us-west-2c"]},
        "sophia:dr.availabilityZones",
    ),
    ("bad stack reference", "sophia:dr", {**DR, "primaryStack": "prod"}, "sophia:dr.primaryStack"),
    (
        "eks open to the world",
        "sophia:dr",
        {**DR, "eks": {"publicAccessCidrs": ["0.0.0.0/0"]}},
        "sophia:dr.eks.publicAccessCidrs",
    ),
    ("empty owner", "sophia:tags", {"owner": "", "costCentre": "x"}, "sophia:tags.owner"),
    ("missing cost centre", "sophia:tags", {"owner": "me"}, "sophia:tags.costCentre"),
    ("pools not a list", "sophia:gpuPools", {"name": "x"}, "sophia:gpuPools"),
    (
        "ssh open to the world",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": ["0.0.0.0/0"]},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "ssh from a private range",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": ["10.0.0.0/8"]},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "no ssh networks",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": []},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "not a public key",
        "sophia:lambdaAccess",
        {**ACCESS, "sshPublicKey": "-----BEGIN"},
        "sophia:lambdaAccess.sshPublicKey",
    ),
    ("join url not https", "sophia:clusterJoin", {"serverUrl": "http://k8s:6443"}, "sophia:clusterJoin.serverUrl"),
    (
        "unpinned k3s",
        "sophia:clusterJoin",
        {"serverUrl": "https://k8s:6443", "k3sVersion": "latest"},
        "sophia:clusterJoin.k3sVersion",
    ),
    ("broken structured value", "sophia:gpuPools", "[{", "sophia:gpuPools"),
    (
        "replica in the same region",
        "sophia:backups",
        backups(replicaRegion="us-west-1"),
        "sophia:backups.replicaRegion",
    ),
    (
        "replica bucket is the source",
        "sophia:backups",
        backups(replicaBucket="sophia-prod-backups"),
        "sophia:backups.replicaBucket",
    ),
    ("replica bucket without region", "sophia:backups", backups(replicaRegion=None), "sophia:backups.replicaRegion"),
    (
        "prod without a replica",
        "sophia:backups",
        backups(replicaRegion=None, replicaBucket=None),
        "sophia:backups.replicaBucket",
    ),
    (
        "ratio of 90",
        "sophia:monitoring",
        monitoring(thresholds={"memoryUsage": 90}),
        "sophia:monitoring.thresholds.memoryUsage",
    ),
    (
        "ratio as text",
        "sophia:monitoring",
        monitoring(thresholds={"errorRate": "0.05"}),
        "sophia:monitoring.thresholds.errorRate",
    ),
    (
        "zero duration",
        "sophia:monitoring",
        monitoring(thresholds={"cpuMinutes": 0}),
        "sophia:monitoring.thresholds.cpuMinutes",
    ),
    (
        "misspelt threshold",
        "sophia:monitoring",
        monitoring(thresholds={"cpuUsagePercent": 80}),
        "sophia:monitoring.thresholds.cpuUsagePercent",
    ),
    (
        "bad cron",
        "sophia:monitoring",
        monitoring(restoreVerification={"schedule": "daily"}),
        "sophia:monitoring.restoreVerification.schedule",
    ),
    ("no monitoring", "sophia:monitoring", None, "sophia:monitoring"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(with_value(stack_config(), key, value))
    assert caught.value.keys == (expected_key,), str(caught.value)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid stack config: " + expected_key + ": ")


def test_unknown_key_lists_what_is_allowed() -> None:
    with pytest.raises(SettingsError, match=r"sophia:lambdaRegon: unknown key; allowed here: .*lambdaRegion"):
        parse_settings(with_value(stack_config(), "sophia:lambdaRegon", "us-west-1"))


def test_unknown_instance_type_lists_catalog() -> None:
    with pytest.raises(SettingsError, match="allowed: gpu_1x_a10, gpu_1x_a100"):
        parse_settings(with_value(stack_config(), "sophia:gpuPools", pools(instanceType="gpu_9x_z")))


def test_several_problems_are_all_reported_on_one_line() -> None:
    config = with_value(stack_config(), "sophia:gpuPools", pools(instanceType="nope", maxx=1))
    config = with_value(config, "sophia:monthlyBudgetUsd", "0")
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    assert set(caught.value.keys) == {
        "sophia:gpuPools[0].instanceType",
        "sophia:gpuPools[0].maxx",
        "sophia:monthlyBudgetUsd",
    }
    assert "\n" not in str(caught.value)


def test_required_keys() -> None:
    config = stack_config()
    del config["sophia:dataLayer"]
    with pytest.raises(SettingsError, match="sophia:dataLayer: is required"):
        parse_settings(config)


def test_pools_need_a_lambda_region() -> None:
    config = stack_config()
    del config["sophia:lambdaRegion"]
    with pytest.raises(SettingsError, match="sophia:lambdaRegion: is required when gpuPools is not empty"):
        parse_settings(config)


def test_pools_need_lambda_access() -> None:
    config = stack_config()
    del config["sophia:lambdaAccess"]
    with pytest.raises(SettingsError, match="sophia:lambdaAccess: is required when gpuPools is not empty"):
        parse_settings(config)


def test_primary_environments_need_kubernetes() -> None:
    config = stack_config()
    del config["sophia:kubernetes"]
    with pytest.raises(SettingsError, match="sophia:kubernetes: is required when environment is prod"):
        parse_settings(config)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"version": "1.9"}, "sophia:kubernetes.version"),
        ({"version": "latest"}, "sophia:kubernetes.version"),
        ({"storageClass": "Fast_SSD"}, "sophia:kubernetes.storageClass"),
        ({"clientNamespaces": ["ok", "Not OK"]}, "sophia:kubernetes.clientNamespaces"),
    ],
)
def test_kubernetes_settings(change: dict[str, Any], key: str) -> None:
    kubernetes = {**decoded(stack_config(), "sophia:kubernetes"), **change}
    with pytest.raises(SettingsError) as caught:
        parse_settings(with_value(stack_config(), "sophia:kubernetes", kubernetes))
    assert caught.value.keys == (key,)


def test_dr_environment_needs_dr_section() -> None:
    config = stack_config("dr")
    del config["sophia:dr"]
    with pytest.raises(SettingsError, match="sophia:dr: is required when environment is dr"):
        parse_settings(config)


def test_other_namespaces_pass_through() -> None:
    config = stack_config()
    config["aws:region"] = "us-east-1"
    config["kubernetes:context"] = "x"
    assert parse_settings(config).environment is Environment.PROD


def test_settings_are_frozen() -> None:
    settings = parse_settings(stack_config())
    with pytest.raises(ValueError, match="frozen"):
        settings.environment = Environment.DEV  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        settings.gpu_pools[0].desired = 5  # type: ignore[misc]
