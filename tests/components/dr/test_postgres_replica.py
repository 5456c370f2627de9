"""The DR Postgres replica's robustness: a WAL-archive fallback that reads, through the same Barman
Cloud plugin, exactly what prod's Cluster archives (as S3 replication copies it), enough WAL kept
on the primary for the archive to catch up, and a `pulumi up` that waits for the replica to be
healthy."""

from __future__ import annotations

import json

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
    source, _own = replica.inputs["spec"]["externalClusters"]
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
    # Only a reader: no retention here may prune prod's archive; the replica archives to its own store.
    assert "retentionPolicy" not in store.inputs["spec"]
    (archiver,) = replica.inputs["spec"]["plugins"]
    assert archiver["parameters"]["barmanObjectName"] != plugin["parameters"]["barmanObjectName"]
    # The plugin is installed with the operator, as in prod.
    assert dr.waits_for(replica, dr.named("postgres-barman-plugin"))
    # Streaming stays the way it follows; the archive is only its fallback.
    assert source["connectionParameters"]["user"] == "streaming_replica"
    assert replica.inputs["spec"]["bootstrap"] == {"pg_basebackup": {"source": "primary"}}


def test_dr_archives_its_own_wal_under_dr_and_names_itself_for_prod(dr: StackRun) -> None:
    """DR's own archive: what prod is rebuilt from after a failover. Under dr/ of the replica bucket
    (never where prod's copy lands), with its own retention, and the `dr` entry of the topology
    names it as prod's Cluster will read it (components/data/postgres_cluster.py)."""
    (replica,) = dr.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    (archiver,) = replica.inputs["spec"]["plugins"]
    assert archiver["isWALArchiver"] is True
    (store,) = [
        s
        for s in dr.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
        if s.inputs["metadata"]["name"] == archiver["parameters"]["barmanObjectName"]
    ]
    assert store.inputs["spec"]["configuration"]["destinationPath"] == "s3://sophia-prod-backups-replica/dr/postgres"
    assert store.inputs["spec"]["retentionPolicy"] == "7d"
    # Backups in every role: barman prunes WAL only with backups, and failback needs one.
    (backup,) = dr.by_type("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup")
    assert backup.inputs["spec"]["cluster"] == {"name": replica.inputs["metadata"]["name"]}
    assert dr.waits_for(replica, store)
    (own,) = [
        c for c in replica.inputs["spec"]["externalClusters"] if c["name"] == replica.inputs["spec"]["replica"]["self"]
    ]
    assert own["plugin"]["parameters"] == {
        "barmanObjectName": store.inputs["metadata"]["name"],
        "serverName": replica.inputs["metadata"]["name"],
    }


def test_the_replicas_account_reads_prods_archive_writes_only_its_own_and_reaches_the_agent(dr: StackRun) -> None:
    (association,) = [
        a
        for a in dr.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == "postgres"
    ]
    role = dr.named("sophia-dr-dr-eks-postgres-pods")
    assert role.urn in association.property_dependencies["roleArn"]
    (role_policy,) = [
        p for p in dr.by_type("aws:iam/rolePolicy:RolePolicy") if role.urn in p.property_dependencies.get("role", ())
    ]
    statements = json.loads(role_policy.inputs["policy"])["Statement"]
    bucket = "arn:aws:s3:::sophia-prod-backups-replica"
    (writes,) = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert writes["Resource"] == f"{bucket}/dr/postgres/*"
    (reads,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert sorted(reads["Resource"]) == [f"{bucket}/dr/postgres/*", f"{bucket}/postgres/*"]
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
