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
    bounds = {p.name: (p.floor, p.min, p.max, p.scale_down_delay_minutes) for p in config.pools}
    assert bounds == {"ai-core": (2, 2, 10, 30), "business": (2, 2, 8, 20), "data": (2, 2, 6, 20), "dev": (0, 1, 3, 20)}
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
        "--scale-down-unneeded-time=20m",
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
