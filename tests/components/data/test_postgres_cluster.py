"""PostgresCluster as the stacks render it."""

from __future__ import annotations

import pulumi
import pytest

from components.data.placement import PLATFORM_RELABELING
from components.data.postgres_cluster import CNPG_MANIFEST, CNPG_VERSION, CRD_TYPE, protect_crds
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
    # Prod keeps 20 minutes of WAL at the peak rate for the DR replica (2 MiB/s: 3 GB).
    assert spec["postgresql"]["parameters"] == {**replication_parameters(), "wal_keep_size": "3GB"}
    assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1.0, "dataDurability": "preferred"}
    # Backups through the Barman Cloud plugin: WAL archiving and base backups to the ObjectStore.
    assert "backup" not in spec
    assert spec["plugins"] == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "postgres", "serverName": "postgres"},
        }
    ]
    (store,) = [
        s
        for s in run.by_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
        if s.inputs["metadata"]["name"] == "postgres"
    ]
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
    # Every object of the manifests stays in the cluster if they leave the stack; protect reaches
    # only the CRDs, through the transform (a ConfigFile's own protect would reach every child).
    for manifest in (operator, run.named("postgres-barman-plugin")):
        assert manifest.protect is False
        assert manifest.retain_on_delete is True
        assert manifest.transforms == 1


@pytest.mark.parametrize("stack", ["dev", "dr"])
def test_the_crds_are_protected_where_data_is(stack: str) -> None:
    """dev protects nothing (no transform); dr, like prod, protects its CRDs."""
    run = run_stack(stack)
    (operator,) = [r for r in run.resources if r.name.endswith("-operator") and r.inputs.get("file") == CNPG_MANIFEST]
    assert (operator.protect, operator.retain_on_delete) == (False, True)
    assert operator.transforms == (1 if stack == "dr" else 0)


# What CloudNativePG 1.30.0's and the Barman Cloud plugin's release manifests hold, as the
# ConfigFile registers them (`kubernetes:<group>/<version>:<Kind>`).
MANIFEST_TYPES = [
    CRD_TYPE,
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Service",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
    "kubernetes:cert-manager.io/v1:Certificate",
    "kubernetes:cert-manager.io/v1:Issuer",
]


@pytest.mark.parametrize("type_", MANIFEST_TYPES)
def test_the_transform_protects_crds_and_nothing_else(type_: str) -> None:
    """What the engine gets back for each child of the manifests (it inherits retainOnDelete and an
    explicit protect=false from the ConfigFile before the transform runs)."""
    inherited = pulumi.ResourceOptions(protect=False, retain_on_delete=True)
    args = pulumi.ResourceTransformArgs(True, type_, "cnpg-system/x", {"metadata": {"name": "x"}}, inherited)
    result = protect_crds(args)
    if type_ == CRD_TYPE:
        assert result is not None
        assert result.opts.protect is True
        assert result.opts.retain_on_delete is True
        assert result.props == args.props
    else:
        assert result is None  # untouched: not protected, still retained


def test_prod_exposes_replication_only_to_the_dr_egress_addresses_with_its_own_certificates() -> None:
    run = run_stack("prod")
    service = run.named("postgres-replication").inputs["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    assert service["loadBalancerSourceRanges"] == ["198.51.100.10/32", "198.51.100.11/32", "198.51.100.12/32"]
    assert service["selector"] == {"cnpg.io/cluster": "postgres", "cnpg.io/instanceRole": "primary"}
    (cluster,) = [c for c in run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster") if c.name == "postgres"]
    assert cluster.inputs["spec"]["certificates"] == {
        "serverCASecret": "postgres-server-tls-cert-manager",
        "serverTLSSecret": "postgres-server-tls-cert-manager",
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
