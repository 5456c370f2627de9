"""The service fleet's warm standby in the DR region, as the dr stack renders it, and the stack files
that keep it the same fleet as prod's."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from components.dr.region import DR_KUBERNETES
from components.dr.services import GATEWAY_NODE_PORTS
from settings import parse_settings
from settings.services import (
    DR_CLIENT_NAMESPACES,
    HPA_SYNC_SECONDS,
    KEDA_POLLING_SECONDS,
    SCRAPE_SECONDS,
    STARTUP_SECONDS,
    service_recovery,
)
from tests.helpers import decoded, stack_config
from tests.k8s_schemas import kubernetes_objects, validate_manifest
from tools.harness import RegisteredResource, StackRun, run_stack

PROD = parse_settings(stack_config("prod"))
DR = parse_settings(stack_config("dr"))
NAMESPACE = "sophia-apps"


@cache
def dr() -> StackRun:
    return run_stack("dr")


def of_type(type_: str) -> list[RegisteredResource]:
    return dr().by_type(type_)


def fleet_objects(type_: str) -> dict[str, Mapping[str, Any]]:
    return {
        r.inputs["metadata"]["name"]: r.inputs
        for r in of_type(type_)
        if r.inputs.get("metadata", {}).get("namespace") == NAMESPACE
    }


def test_dr_runs_the_same_services_as_prod() -> None:
    assert decoded(stack_config("dr"), "sophia:services") == decoded(stack_config("prod"), "sophia:services")
    assert DR_KUBERNETES.client_namespaces == DR_CLIENT_NAMESPACES


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_each_regions_gateway_serves_the_failover_name_its_endpoint_and_the_health_check(stack: str) -> None:
    settings = PROD if stack == "prod" else DR
    assert settings.fleet is not None
    assert DR.dr is not None
    failover = DR.dr.failover
    endpoint = failover.primary_endpoint if stack == "prod" else failover.secondary_endpoint
    assert set(settings.fleet.gateway.hostnames) == {failover.record_name, endpoint}
    assert settings.fleet.gateway.health_path == failover.health_check_path
    assert settings.fleet.gateway.health_service is not None


def test_each_pool_is_a_node_group_with_its_label_and_taint() -> None:
    groups = {
        g.inputs["labels"]["sophia.ai/pool"]: g
        for g in of_type("aws:eks/nodeGroup:NodeGroup")
        if g.inputs.get("labels")
    }
    assert set(groups) == {"ai-core", "business", "data", "dev"}
    for pool, group in groups.items():
        assert group.inputs["taints"] == [{"key": "sophia.ai/pool", "value": pool, "effect": "NO_SCHEDULE"}]
        # The autoscaler owns the desired size once the group exists.
        assert group.ignore_changes == ("scalingConfig.desiredSize",)
    assert groups["ai-core"].inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert groups["ai-core"].inputs["labels"]["nvidia.com/gpu.present"] == "true"
    assert groups["business"].inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert groups["ai-core"].inputs["scalingConfig"] == {"minSize": 2.0, "desiredSize": 2.0, "maxSize": 10.0}


def test_standby_replicas_and_the_same_scaling() -> None:
    scalers = fleet_objects("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert scalers["customer-api-business"]["spec"]["minReplicaCount"] == 2.0  # dr.standbyReplicas: 2
    assert scalers["billing-business"]["spec"]["minReplicaCount"] == 1.0  # the default standby
    assert scalers["billing-business"]["spec"]["maxReplicaCount"] == 6.0  # prod's max
    prod_triggers = [t["metadata"].get("threshold") for t in _prod_scaler("billing-business")["spec"]["triggers"]]
    assert [t["metadata"].get("threshold") for t in scalers["billing-business"]["spec"]["triggers"]] == prod_triggers
    url = scalers["billing-business"]["spec"]["triggers"][2]["metadata"]["serverAddress"]
    assert url == "http://monitoring-kube-prometheus-prometheus.monitoring.svc:9090"
    [release] = [r for r in of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "kube-prometheus-stack"]
    assert release.inputs["namespace"] == "monitoring"
    pod = fleet_objects("kubernetes:apps/v1:Deployment")["inference-ai-core"]["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod  # the accelerated AMI's default runtime has the GPUs


def _prod_scaler(name: str) -> Mapping[str, Any]:
    return next(
        r.inputs
        for r in run_stack("prod").by_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
        if r.inputs["metadata"]["name"] == name
    )


def test_the_gateway_sits_on_node_ports_behind_an_internet_facing_nlb() -> None:
    [proxy] = [r.inputs for r in of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")]
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "NodePort"
    assert service["patch"]["value"]["spec"]["ports"] == [
        {"port": 80.0, "nodePort": float(GATEWAY_NODE_PORTS.http)},
        {"port": 443.0, "nodePort": float(GATEWAY_NODE_PORTS.https)},
    ]
    [balancer] = of_type("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["loadBalancerType"] == "network"
    assert balancer.inputs["internal"] is False
    listeners = {item.inputs["port"]: item for item in of_type("aws:lb/listener:Listener")}
    groups = {g.urn: g for g in of_type("aws:lb/targetGroup:TargetGroup")}
    # HTTPS only: an NLB cannot redirect plain HTTP, and the pack refuses forwarding it (aws-lb-listener-tls).
    assert set(listeners) == {443.0}
    assert listeners[443.0].inputs["protocol"] == "TCP"  # TLS ends at Envoy
    assert {g.inputs["port"] for g in groups.values()} == {30443.0}
    # Clients reach the load balancer on 443; the nodes admit the node port from it only.
    ingress = of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    public = sorted(r.inputs["fromPort"] for r in ingress if r.inputs.get("cidrIpv4") == "0.0.0.0/0")
    assert public == [443.0]
    node_ports = [r for r in ingress if r.inputs.get("fromPort") in (30080.0, 30443.0)]
    assert len(node_ports) == 1
    assert all("cidrIpv4" not in r.inputs for r in node_ports)
    assert all(r.property_dependencies.get("referencedSecurityGroupId") for r in node_ports)


def test_the_secondary_endpoint_aliases_the_load_balancer_and_the_failover_pair_is_untouched() -> None:
    records = of_type("aws:route53/record:Record")
    [alias] = [r for r in records if r.inputs.get("aliases")]
    assert alias.inputs["name"] == "api-dr.sophia.ai"
    assert alias.inputs["type"] == "A"
    assert alias.inputs["aliases"][0]["evaluateTargetHealth"] is True
    [balancer] = of_type("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.urn in alias.property_dependencies["aliases"]
    pair = {r.inputs["failoverRoutingPolicies"][0]["type"]: r for r in records if "failoverRoutingPolicies" in r.inputs}
    assert pair["SECONDARY"].inputs["records"] == ["api-dr.sophia.ai"]
    # The secondary's health check requests the DR gateway's health route through that alias.
    checks = {c.inputs["fqdn"]: c for c in of_type("aws:route53/healthCheck:HealthCheck")}
    assert checks["api-dr.sophia.ai"].inputs["resourcePath"] == "/healthz"
    # The promoter still owns the primary check's disabled/inverted flags.
    assert set(checks["api-primary.sophia.ai"].ignore_changes) == {"disabled", "invertHealthcheck"}


def test_the_gateway_certificate_is_issued_by_dns01_in_the_failover_zone() -> None:
    [issuer] = [r.inputs for r in of_type("kubernetes:cert-manager.io/v1:ClusterIssuer")]
    assert DR.dr is not None
    route53 = issuer["spec"]["acme"]["solvers"][0]["dns01"]["route53"]
    assert (route53["region"], route53["hostedZoneID"]) == ("us-east-1", DR.dr.failover.hosted_zone_id)
    assert route53["accessKeyIDSecretRef"] == {"name": "route53-acme", "key": "access-key-id"}
    routes = fleet_objects("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
    health = routes["health"]["spec"]["rules"][0]
    assert health["matches"] == [{"path": {"type": "Exact", "value": "/healthz"}}]
    assert health["backendRefs"][0]["name"] == "customer-api"


def test_the_rto_counts_dns_failover_and_scale_up_from_standby() -> None:
    assert DR.dr is not None
    dns = DR.dr.failover.worst_case_failover_seconds
    assert dns == 10 * 3 + 20
    recovery = dr().outputs["drServiceRecoverySeconds"]
    # A warm service answers as soon as clients reach DR; its first extra replicas one scrape, one HPA
    # sync and one start later.
    business = STARTUP_SECONDS[next(s for s in DR.services if s.name == "billing").kind]
    assert recovery["billing"] == {"serving": dns, "scaledUp": dns + SCRAPE_SECONDS + HPA_SYNC_SECONDS + business}
    # A cold one (standbyReplicas 0) waits for KEDA to activate it and a replica to start.
    playground = next(s for s in DR.services if s.name == "playground")
    cold = service_recovery(playground, dns)
    assert not cold.warm
    assert cold.serving_seconds == dns + KEDA_POLLING_SECONDS + STARTUP_SECONDS[playground.kind]
    warm = [s.name for s in DR.services if service_recovery(s, dns).warm]
    assert warm == [s.name for s in DR.services if s.dr.standby_replicas > 0]
    assert all(service_recovery(s, dns).serving_seconds < DR.dr.rto_seconds for s in DR.services if s.name in warm)


def test_every_dr_fleet_object_passes_its_schema() -> None:
    objects = [(n, m) for n, m in kubernetes_objects(dr()) if "-services-" in n]
    assert len(objects) > 100
    problems = {name: validate_manifest(manifest, DR.dr.eks.version if DR.dr else "1.33") for name, manifest in objects}
    assert {name: errors for name, errors in problems.items() if errors} == {}
