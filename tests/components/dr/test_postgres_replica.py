"""The DR Postgres replica's robustness: a WAL-archive fallback that reads, through the same Barman
Cloud plugin, exactly what prod's Cluster archives (as S3 replication copies it), enough WAL kept
on the primary for the archive to catch up, and a `pulumi up` that waits for the replica to be
healthy."""

from __future__ import annotations

import pytest

from components.dr.postgres_replica import bootstrap_timeout_minutes
from settings.data import DrReplicationSettings
from tools.harness import StackRun, run_stack


@pytest.fixture(scope="module")
def dr() -> StackRun:
    return run_stack("dr")


def test_fallback_reads_prods_archive_as_replicated_into_this_region(dr: StackRun) -> None:
    prod = run_stack("prod")
    (primary,) = prod.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    # prod archives through the Barman Cloud plugin, to the ObjectStore its Cluster names.
    (prod_plugin,) = primary.inputs["spec"]["plugins"]
    (prod_store,) = [
        s
        for s in prod.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
        if s.inputs["metadata"]["name"] == prod_plugin["parameters"]["barmanObjectName"]
    ]
    (replica,) = dr.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    (source,) = replica.inputs["spec"]["externalClusters"]
    # The same plugin reads it here: the source's object store, and prod's server name.
    plugin = source["plugin"]
    assert plugin["name"] == prod_plugin["name"] == "barman-cloud.cloudnative-pg.io"
    assert "barmanObjectStore" not in source  # the in-tree store CloudNativePG deprecates
    (store,) = [
        s
        for s in dr.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
        if s.inputs["metadata"]["name"] == plugin["parameters"]["barmanObjectName"]
    ]
    assert store.inputs["metadata"]["namespace"] == replica.inputs["metadata"]["namespace"]
    assert dr.waits_for(replica, store)
    configuration = store.inputs["spec"]["configuration"]
    # Same keys, other bucket: S3 replication copies every object under its own key.
    assert configuration["destinationPath"] == prod_store.inputs["spec"]["configuration"]["destinationPath"].replace(
        "s3://sophia-prod-backups/", "s3://sophia-prod-backups-replica/"
    )
    # Barman's server name defaults to the Cluster's name: prod's, not the replica's own.
    assert plugin["parameters"]["serverName"] == primary.inputs["metadata"]["name"]
    assert "serverName" not in configuration  # the ObjectStore CRD forbids it
    assert configuration["s3Credentials"] == {"inheritFromIAMRole": True}  # the Pod Identity role
    assert configuration["endpointURL"] == "https://s3.us-east-1.amazonaws.com"
    # Only a reader: no retention here may prune prod's archive, and the replica archives nothing.
    assert "retentionPolicy" not in store.inputs["spec"]
    assert "plugins" not in replica.inputs["spec"]
    # The plugin is installed with the operator, as in prod.
    assert dr.waits_for(replica, dr.named("postgres-barman-plugin"))
    # Streaming stays the way it follows; the archive is only its fallback.
    assert source["connectionParameters"]["user"] == "streaming_replica"
    assert replica.inputs["spec"]["bootstrap"] == {"pg_basebackup": {"source": "primary"}}


def test_the_replicas_account_may_read_the_archive_and_reach_the_agent(dr: StackRun) -> None:
    (association,) = [
        a
        for a in dr.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == "postgres"
    ]
    assert dr.named("sophia-dr-dr-eks-backup-reader-pods").urn in association.property_dependencies["roleArn"]
    policy = dr.named("postgres-network").inputs["spec"]
    assert {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80.0}]} in (
        policy["egress"]
    )


def test_pulumi_waits_for_the_replica_to_be_ready(dr: StackRun) -> None:
    (replica,) = dr.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert replica.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    create, update, _ = replica.custom_timeouts
    # 500 GiB at 50 MiB/s is 171 minutes, plus 30.
    assert (create, update) == ("201m", "30m")
    assert bootstrap_timeout_minutes(500) == 201


@pytest.mark.parametrize(("rate", "gib"), [(0.5, 2), (2.0, 3), (10.0, 12)])
def test_wal_kept_covers_the_archive_copys_lag(rate: float, gib: int) -> None:
    """20 minutes (Replication Time Control 15 + archive_timeout 5) at the peak WAL rate."""
    settings = DrReplicationSettings.model_validate(
        {"hostname": "pg.sophia.ai", "hostedZoneId": "Z1", "peakWalMibPerSecond": rate}
    )
    assert settings.wal_keep_gib == gib
