"""Data-layer and cluster settings: each rule, broken alone on the valid prod config, names its key."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, parse_settings
from tests.helpers import decoded, stack_config, with_value
from tests.settings.broken import Broken, assert_rejected, data_layer

REPLICATION: dict[str, Any] = decoded(stack_config(), "sophia:dataLayer")["postgres"]["drReplication"]
DR_REPLICATION = REPLICATION

BROKEN: list[Broken] = [
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
    (
        "replication zone not a zone id",
        "sophia:dataLayer",
        data_layer("postgres", drReplication={**REPLICATION, "hostedZoneId": "sophia.ai"}),
        "sophia:dataLayer.postgres.drReplication.hostedZoneId",
    ),
    (
        "wal kept for dr fills the volume",
        "sophia:dataLayer",
        data_layer("postgres", drReplication={**REPLICATION, "peakWalMibPerSecond": 200}),
        "sophia:dataLayer.postgres.drReplication.peakWalMibPerSecond",
    ),
    (
        "replication open to a private network",
        "sophia:dataLayer",
        data_layer("postgres", drReplication={**REPLICATION, "allowedCidrs": ["10.40.0.0/24"]}),
        "sophia:dataLayer.postgres.drReplication.allowedCidrs",
    ),
    (
        "lease table name",
        "sophia:dataLayer",
        data_layer("postgres", drReplication={**DR_REPLICATION, "failoverLeaseTable": "x"}),
        "sophia:dataLayer.postgres.drReplication.failoverLeaseTable",
    ),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"version": "1.9"}, "sophia:kubernetes.version"),
        ({"version": "latest"}, "sophia:kubernetes.version"),
        ({"storageClass": "Fast_SSD"}, "sophia:kubernetes.storageClass"),
        ({"clientNamespaces": ["ok", "Not OK"]}, "sophia:kubernetes.clientNamespaces"),
        ({"scratchStorage": {"provisioner": "Local Path"}}, "sophia:kubernetes.scratchStorage.provisioner"),
        ({"scratchStorage": {"provisioner": "a/b/c"}}, "sophia:kubernetes.scratchStorage.provisioner"),
    ],
)
def test_kubernetes_settings(change: dict[str, Any], key: str) -> None:
    kubernetes = {**decoded(stack_config(), "sophia:kubernetes"), **change}
    with pytest.raises(SettingsError) as caught:
        parse_settings(with_value(stack_config(), "sophia:kubernetes", kubernetes))
    assert caught.value.keys == (key,)


def test_a_lease_table_needs_the_dr_region_of_the_backups() -> None:
    """The guard renews the lease in the DR region, which the stack knows as backups.replicaRegion."""
    layer = decoded(stack_config("dev"), "sophia:dataLayer")
    layer["postgres"]["drReplication"] = DR_REPLICATION
    assert_rejected("sophia:dataLayer", layer, "sophia:dataLayer.postgres.drReplication.failoverLeaseTable", "dev")
