"""RedisCluster as the stacks render it."""

from __future__ import annotations

from components.data.redis_cluster import CLUSTER_SCRIPT, REDIS_IMAGE, SCRIPTS, START_SCRIPT, TLS_RELOAD_SCRIPT
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
    assert containers["redis"]["image"] == REDIS_IMAGE
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


def test_pods_and_the_cluster_job_run_the_scripts_the_real_server_tests_run() -> None:
    run = run_stack("prod")
    scripts = named(run, "kubernetes:core/v1:ConfigMap", "redis-scripts").inputs["data"]
    assert scripts == {p.name: p.read_text() for p in sorted(SCRIPTS.glob("redis_*.sh"))}
    pod = named(run, "kubernetes:apps/v1:StatefulSet", "redis").inputs["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert containers["redis"]["command"] == ["sh", f"/scripts/{START_SCRIPT.name}"]
    env = {e["name"]: e for e in containers["redis"]["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["ANNOUNCE_HOSTNAME"]["value"] == "$(POD_NAME).redis-headless.sophia-data.svc"
    assert containers["tls-reload"]["command"] == ["sh", f"/scripts/{TLS_RELOAD_SCRIPT.name}"]
    job = named(run, "kubernetes:batch/v1:Job", "redis-create").inputs["spec"]["template"]["spec"]
    assert [c["name"] for c in job["initContainers"]] == ["scale-up", "cluster"]
    assert [c["name"] for c in job["containers"]] == ["scale-down"]
    cluster = job["initContainers"][1]
    assert cluster["command"] == ["bash", f"/scripts/{CLUSTER_SCRIPT.name}"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in cluster["env"]}
    assert (env["MASTERS"], env["REPLICAS_PER_MASTER"]) == ("3", "1")
    assert env["REDISCLI_AUTH"] == {"secretKeyRef": {"name": "redis-auth", "key": "admin-password"}}
    assert job["serviceAccountName"] == "redis-create"


def test_the_job_owns_the_statefulset_scale_and_may_touch_nothing_else() -> None:
    run = run_stack("prod")
    assert named(run, "kubernetes:apps/v1:StatefulSet", "redis").ignore_changes == ("spec.replicas",)
    rules = named(run, "kubernetes:rbac.authorization.k8s.io/v1:Role", "redis-cluster-role").inputs["rules"]
    assert rules == [
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": ["redis"], "verbs": ["get"]},
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets/scale"],
            "resourceNames": ["redis"],
            "verbs": ["get", "patch"],
        },
    ]


def test_each_client_of_redis_has_its_own_acl_user() -> None:
    run = run_stack("prod")
    pod = named(run, "kubernetes:apps/v1:StatefulSet", "redis").inputs["spec"]["template"]["spec"]
    exporter = next(c for c in pod["containers"] if c["name"] == "exporter")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in exporter["env"]}
    assert env["REDIS_USER"] == "exporter"
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis-auth", "key": "exporter-password"}}
    snapshot = named(run, "kubernetes:batch/v1:CronJob", "redis-snapshot").inputs["spec"]["jobTemplate"]["spec"]
    step = snapshot["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in step["env"]}
    assert env["REDISCLI_AUTH"] == {"secretKeyRef": {"name": "redis-auth", "key": "backup-password"}}
    assert "--user backup" in env["REDIS_CLI_OPTIONS"]
