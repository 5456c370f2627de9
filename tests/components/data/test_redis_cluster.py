"""RedisCluster as the stacks render it."""

from __future__ import annotations

from tools.harness import RegisteredResource, StackRun, run_stack
from tools.redact import is_secret


def named(run: StackRun, type_: str, name: str) -> RegisteredResource:
    [resource] = [r for r in run.resources if r.type == type_ and r.name == name]
    return resource


def test_prod_runs_three_masters_with_a_replica_each_and_protects_the_data() -> None:
    run = run_stack("prod")
    statefulset = named(run, "kubernetes:apps/v1:StatefulSet", "redis")
    spec = statefulset.inputs["spec"]
    assert spec["replicas"] == 6.0
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd-retain"
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    assert statefulset.protect is True
    containers = {c["name"]: c for c in spec["template"]["spec"]["containers"]}
    assert containers["redis"]["image"] == "redis:7.2.5"
    assert next(e for e in containers["redis"]["env"] if e["name"] == "REDIS_PASSWORD")["valueFrom"]
    assert "exporter" in containers


def test_dev_does_not_protect_and_runs_three_masters_alone() -> None:
    statefulset = named(run_stack("dev"), "kubernetes:apps/v1:StatefulSet", "redis")
    assert statefulset.inputs["spec"]["replicas"] == 3.0
    assert statefulset.protect is False


def test_config_map_holds_the_generated_config_and_no_password() -> None:
    run = run_stack("prod")
    conf = named(run, "kubernetes:core/v1:ConfigMap", "redis-config").inputs["data"]["redis.conf"]
    assert "port 0\n" in conf
    assert "tls-cluster yes\n" in conf
    assert "include /etc/redis/auth/auth.conf\n" in conf
    assert "requirepass" not in conf
    assert conf.startswith("bind 0.0.0.0\n")
    auth = named(run, "kubernetes:core/v1:Secret", "redis-auth").inputs
    string_data = auth["stringData"]
    assert is_secret(string_data) or string_data == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_network_policy_opens_only_what_clients_peers_and_monitoring_need() -> None:
    run = run_stack("prod")
    spec = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "redis-network").inputs["spec"]
    ingress = spec["ingress"]
    client_rule = next(
        r
        for r in ingress
        if r["ports"] == [{"protocol": "TCP", "port": 6379.0}] and "namespaceSelector" in r["from"][0]
    )
    assert client_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "sophia-apps"}}}
    ]
    assert any(r["ports"] == [{"protocol": "TCP", "port": 9121.0}] for r in ingress)
    assert spec["policyTypes"] == ["Ingress", "Egress"]


def test_the_cluster_job_pod_is_not_behind_the_redis_services() -> None:
    run = run_stack("prod")
    job = named(run, "kubernetes:batch/v1:Job", "redis-create").inputs
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    selector = named(run, "kubernetes:core/v1:Service", "redis-client").inputs["spec"]["selector"]
    assert not all(job_labels.get(k) == v for k, v in selector.items())
    assert "--cluster-replicas 1 --cluster-yes" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
