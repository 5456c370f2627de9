"""PostgresCluster as the stacks render it."""

from __future__ import annotations

from components.data.placement import PLATFORM_RELABELING
from components.data.postgres_cluster import CNPG_MANIFEST, CNPG_VERSION
from components.data.postgres_config import replication_parameters
from tools.harness import RegisteredResource, StackRun, run_stack
from tools.redact import is_secret

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"


def cluster_of(run: StackRun) -> RegisteredResource:
    return next(r for r in run.by_type(CLUSTER) if r.name == "postgres")


def test_prod_cluster_is_a_primary_and_two_synchronous_capable_replicas() -> None:
    run = run_stack("prod")
    cluster = cluster_of(run)
    assert cluster.protect is True
    spec = cluster.inputs["spec"]
    assert spec["instances"] == 3.0
    assert spec["postgresql"]["parameters"] == replication_parameters()
    assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1.0, "dataDurability": "preferred"}
    # Backups through the Barman Cloud plugin: WAL archiving and base backups to the ObjectStore.
    assert "backup" not in spec
    assert spec["plugins"] == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "postgres"},
        }
    ]
    (store,) = run.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    configuration = store.inputs["spec"]["configuration"]
    assert configuration["destinationPath"] == "s3://sophia-prod-backups/postgres"
    assert store.inputs["spec"]["retentionPolicy"] == "30d"
    assert configuration["s3Credentials"]["accessKeyId"] == {"name": "backup-s3", "key": "ACCESS_KEY_ID"}
    daily = run.named("postgres-daily").inputs["spec"]
    assert (daily["method"], daily["pluginConfiguration"]) == ("plugin", {"name": "barman-cloud.cloudnative-pg.io"})
    assert spec["monitoring"] == {"enablePodMonitor": True, "podMonitorRelabelings": [PLATFORM_RELABELING]}


def test_dev_is_a_single_instance_without_synchronous_standbys() -> None:
    spec = cluster_of(run_stack("dev")).inputs["spec"]
    assert spec["instances"] == 1.0
    # `number: 0` is refused by the CRD's CEL rule (self > 0): no standby, no synchronous section.
    assert "synchronous" not in spec["postgresql"]


def test_backup_credentials_stay_secret_and_operator_matches_the_crds() -> None:
    run = run_stack("prod")
    string_data = run.named("sophia-prod-data-backup-s3").inputs["stringData"]
    assert is_secret(string_data) or all(is_secret(v) for v in string_data.values())
    operator = run.named("postgres-operator")
    assert operator.inputs["file"] == CNPG_MANIFEST
    assert CNPG_VERSION == "1.30.0"  # the CloudNativePG release of ../shared/reference/crds
    # The CRDs hang off these: protected in prod, and kept in the cluster if they leave the stack.
    for manifest in (operator, run.named("postgres-barman-plugin")):
        assert manifest.protect is True
        assert manifest.retain_on_delete is True


def test_prod_exposes_replication_only_to_the_dr_egress_addresses_with_its_own_certificates() -> None:
    run = run_stack("prod")
    service = run.named("postgres-replication").inputs["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    assert service["loadBalancerSourceRanges"] == ["198.51.100.10/32", "198.51.100.11/32", "198.51.100.12/32"]
    assert service["selector"] == {"cnpg.io/cluster": "postgres", "cnpg.io/instanceRole": "primary"}
    (cluster,) = [c for c in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster") if c.name == "postgres"]
    assert cluster.inputs["spec"]["certificates"] == {
        "serverCASecret": "postgres-server-tls",
        "serverTLSSecret": "postgres-server-tls",
        "clientCASecret": "postgres-replication-tls",
        "replicationTLSSecret": "postgres-replication-tls",
    }
    server = run.named("postgres-server-cert-certificate").inputs["spec"]
    assert "pg-replication.sophia.ai" in server["dnsNames"]
    assert "postgres-rw.sophia-data.svc" in server["dnsNames"]
    assert server["secretTemplate"]["labels"] == {"cnpg.io/reload": "true"}
    client = run.named("postgres-replication-cert-csr").inputs
    assert client["subject"]["commonName"] == "streaming_replica"
    policy = run.named("postgres-network").inputs["spec"]
    blocks = [p["ipBlock"]["cidr"] for rule in policy["ingress"] for p in rule.get("from", []) if "ipBlock" in p]
    assert blocks == service["loadBalancerSourceRanges"]


def test_dev_has_no_replication_endpoint() -> None:
    run = run_stack("dev")
    assert not [r for r in run.resources if r.name == "postgres-replication"]
