"""ClusterAutoscaler as the stacks build it: the upstream autoscaler wired to the node-group service over
mTLS, the service fed the pools from the settings, and nothing secret outside Secrets."""

from __future__ import annotations

import yaml

from autoscaler.config import ServiceConfig
from components.compute.autoscaler import CLUSTER_AUTOSCALER_IMAGE, SERVICE_NAME, SERVICE_PORT
from tools.harness import RegisteredResource, StackRun, run_stack
from tools.redact import is_secret

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
CERT_REQUEST = "tls:index/certRequest:CertRequest"


def named(run: StackRun, type_: str, name: str) -> RegisteredResource:
    [found] = [r for r in run.by_type(type_) if r.inputs["metadata"]["name"] == name]
    return found


def test_the_service_gets_the_pools_from_the_settings() -> None:
    run = run_stack("prod")
    document = named(run, CONFIG_MAP, "lambda-node-groups-pools").inputs["data"]["pools.json"]
    config = ServiceConfig.from_json(document)
    assert config.cluster == "sophia-prod"
    bounds = {p.name: (p.floor, p.min, p.max) for p in config.pools}
    assert bounds == {"ai-core": (2, 2, 10), "business": (2, 2, 8), "data": (2, 2, 6), "dev": (0, 1, 3)}
    dev = config.pool("dev")
    assert dev is not None
    assert dev.off_hours is not None
    assert (dev.off_hours.stop_at, dev.off_hours.start_at) == ("20:00", "07:00")
    assert dev.ssh_key_names == ("sophia-prod-dev",)
    assert dev.firewall_rulesets == {r: (f"sophia-prod-dev-{r}",) for r in ("us-west-1", "us-west-2", "us-east-1")}
    assert dev.tags["managed-by"] == "cluster-autoscaler"
    assert config.join is not None
    assert config.join.server_url == "https://k8s.sophia.internal:6443"


def test_one_service_replica_never_two_and_credentials_only_from_secrets() -> None:
    run = run_stack("prod")
    service = named(run, DEPLOYMENT, SERVICE_NAME).inputs["spec"]
    assert service["replicas"] == 1
    assert service["strategy"] == {"type": "Recreate"}
    [container] = service["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/sophia-ai/lambda-node-groups:0.1.0"
    assert container["command"] == ["python", "-m", "autoscaler"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]} == {
        "LAMBDA_API_KEY": "lambda-api-key",
        "CLUSTER_JOIN_TOKEN": "cluster-join-token",
    }
    assert "--tls-ca=/etc/lambda-node-groups/tls/ca.crt" in container["args"]
    credentials = named(run, SECRET, "lambda-node-groups-credentials").inputs["stringData"]
    assert is_secret(credentials)  # the whole map: the key and the join token never appear in the clear
    assert set(credentials["value"]) == {"lambda-api-key", "cluster-join-token"}


def test_cluster_autoscaler_is_pinned_and_speaks_mtls_to_the_service() -> None:
    run = run_stack("prod")
    spec = named(run, DEPLOYMENT, "cluster-autoscaler").inputs["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["image"] == CLUSTER_AUTOSCALER_IMAGE
    args = container["args"]
    for flag in (
        "--cloud-provider=externalgrpc",
        "--cloud-config=/config/cloud-config",
        "--expander=price",
        "--scale-down-delay-after-add=20m",
        "--scale-down-unneeded-time=30m",  # sophia:autoscaler.scaleDownUnneededMinutes, every pool
        "--max-node-provision-time=20m",  # 5 min launch queue + the 1-GPU 15 min boot allowance
    ):
        assert flag in args
    cloud = yaml.safe_load(named(run, CONFIG_MAP, "cluster-autoscaler-cloud-config").inputs["data"]["cloud-config"])
    host, port = cloud["address"].rsplit(":", 1)
    assert (host, int(port)) == (f"{SERVICE_NAME}.sophia-autoscaler.svc", SERVICE_PORT)
    assert {cloud["key"], cloud["cert"], cloud["cacert"]} == {
        "/etc/ssl/client-cert/tls.key",
        "/etc/ssl/client-cert/tls.crt",
        "/etc/ssl/client-cert/ca.crt",
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/etc/ssl/client-cert"]]["secret"]["secretName"] == "cluster-autoscaler-grpc-client-tls"
    # The client checks the server certificate against the host of `address` (EGCP @1.36.1).
    server_csr = [r for r in run.by_type(CERT_REQUEST) if r.name.endswith("-server-csr")]
    assert [r.inputs["dnsNames"][0] for r in server_csr] == [host]
    assert is_secret(named(run, SECRET, "lambda-node-groups-tls").inputs["stringData"])


def test_only_stacks_with_the_autoscaler_get_it() -> None:
    assert run_stack("dr").by_type("sophia:compute:ClusterAutoscaler") == []
    assert run_stack("prod", config_overrides={"sophia:autoscaler": None}).by_type(DEPLOYMENT)
    without = run_stack("prod", config_overrides={"sophia:autoscaler": None})
    assert [r for r in without.by_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == SERVICE_NAME] == []


CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


def test_the_service_may_delete_nodes_and_mounts_a_token_for_it() -> None:
    run = run_stack("prod")
    pod = named(run, DEPLOYMENT, SERVICE_NAME).inputs["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == SERVICE_NAME
    role = named(run, CLUSTER_ROLE, f"sophia-autoscaler-{SERVICE_NAME}")
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "delete"]}]
    binding = named(run, CLUSTER_ROLE_BINDING, f"sophia-autoscaler-{SERVICE_NAME}")
    assert binding.inputs["roleRef"]["name"] == role.inputs["metadata"]["name"]
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_NAME, "namespace": "sophia-autoscaler"}
    ]
    policy = named(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", SERVICE_NAME).inputs["spec"]
    ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports", [])}
    assert {443, 6443} <= ports  # the Lambda API and the API server


def test_both_pods_are_system_cluster_critical_and_the_autoscaler_creates_no_nodes() -> None:
    run = run_stack("prod")
    for deployment in (SERVICE_NAME, "cluster-autoscaler"):
        pod = named(run, DEPLOYMENT, deployment).inputs["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == "system-cluster-critical"
    role = named(run, CLUSTER_ROLE, "sophia-autoscaler-cluster-autoscaler")
    [nodes] = [r for r in role.inputs["rules"] if r["resources"] == ["nodes"]]
    assert nodes["verbs"] == ["watch", "list", "get", "update"]  # the chart's, for externalgrpc


SWEEP = "pulumi-python:dynamic/lambda:BurstSweep"


def test_the_burst_sweep_is_deleted_after_the_service_and_before_the_pools_rulesets() -> None:
    """Pulumi deletes dependents first: the service (which could launch behind the sweep) goes before
    it, the rulesets and keys (which burst instances hold) after it."""
    run = run_stack("prod")
    [sweep] = run.by_type(SWEEP)
    assert (sweep.inputs["owner_tag"], sweep.inputs["owner"]) == ("sophia-autoscaler", "sophia-prod")
    service = named(run, DEPLOYMENT, SERVICE_NAME)
    assert sweep.urn in service.depends_on
    held = [r.urn for r in run.resources if r.type.endswith(("lambda:FirewallRuleset", "lambda:SshKey"))]
    assert len(held) == 4 * 3 + 4  # each pool's ruleset in each of the three regions, and its key
    assert set(held) <= set(sweep.depends_on)
    assert run_stack("prod", config_overrides={"sophia:autoscaler": None}).by_type(SWEEP) == []
