"""The service fleet as the prod stack renders it under the mock runtime (engine-shaped inputs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from components.services.capability import GPU_TFLOPS, WEIGHT_TOTAL, split
from components.services.operators import ENVOY_GATEWAY_VERSION, KEDA_VERSION
from components.services.tracing import COLLECTOR_CHART_VERSION, JAEGER_CHART_VERSION
from settings import parse_settings
from tests.helpers import decoded, stack_config
from tests.k8s_schemas import kubernetes_objects, validate_manifest
from tools.harness import RegisteredResource, StackRun, run_stack
from tools.redact import is_secret
from tools.secret_scan import plaintext_secrets

NAMESPACE = "sophia-apps"
SETTINGS = parse_settings(stack_config())
SERVICES = {s.name: s for s in SETTINGS.services}
POOL_TYPES = {p.name: p.instance_type for p in SETTINGS.gpu_pools}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
TRAFFIC_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:BackendTrafficPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"


@cache
def prod() -> StackRun:
    return run_stack("prod")


def objects(run: StackRun, type_: str) -> dict[str, Mapping[str, Any]]:
    """Kubernetes name -> inputs, for the fleet's objects of one type."""
    return {
        r.inputs["metadata"]["name"]: r.inputs
        for r in run.by_type(type_)
        if r.inputs.get("metadata", {}).get("namespace") == NAMESPACE
    }


def with_services(services: list[dict[str, Any]]) -> StackRun:
    return run_stack("prod", config_overrides={"sophia:services": json.dumps(services)})


def service_config(name: str, **changes: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = decoded(stack_config(), "sophia:services")
    for entry in listed:
        if entry["name"] == name:
            entry.update(changes)
    return [{k: v for k, v in e.items() if v is not None} for e in listed]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_backend_is_a_hardened_deployment_on_its_pool(service: str) -> None:
    settings = SERVICES[service]
    deployments = objects(prod(), DEPLOYMENT)
    budgets = objects(prod(), "kubernetes:policy/v1:PodDisruptionBudget")
    tracks = ["", "-next"] if settings.next else [""]
    for pool in settings.pool:
        for track in tracks:
            name = f"{service}-{pool}{track}"
            spec = deployments[name]["spec"]
            assert "replicas" not in spec, "KEDA owns the replica count"
            assert spec["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0.0, "maxSurge": 1.0},
            }
            pod = spec["template"]["spec"]
            assert pod["nodeSelector"] == {"sophia.ai/pool": pool}
            assert pod["tolerations"] == [
                {"key": "sophia.ai/pool", "operator": "Equal", "value": pool, "effect": "NoSchedule"}
            ]
            assert pod["serviceAccountName"] == service
            assert pod["automountServiceAccountToken"] is False
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
                "kubernetes.io/hostname",
                "topology.kubernetes.io/zone",
            }
            assert pod.get("hostNetwork") is None
            [container] = pod["containers"]
            assert container["image"] == (settings.next.image if track and settings.next else settings.image)
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            resources = container["resources"]
            assert resources["requests"] == resources["limits"]
            assert resources["requests"]["cpu"] == settings.resources.cpu
            assert resources["requests"].get("nvidia.com/gpu") == (
                str(settings.resources.gpus) if settings.resources.gpus else None
            )
            assert pod.get("runtimeClassName") == ("nvidia" if settings.resources.gpus else None)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"] == {"path": settings.health_path, "port": "http"}
            # The budget selects exactly the Deployment's pods.
            budget = budgets[name]["spec"]
            assert budget["maxUnavailable"] == 1.0
            assert budget["selector"] == spec["selector"]
            assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def peers(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(rule.get("from") or rule.get("to") or [])


def test_network_policies_admit_only_the_gateway_the_callers_and_prometheus() -> None:
    policies = objects(prod(), "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    billing = policies["billing"]["spec"]
    assert billing["podSelector"] == {"matchLabels": {"sophia.ai/service": "billing"}}
    sources = [peer for rule in billing["ingress"] for peer in peers(rule)]
    assert sources == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}},
            "podSelector": {
                "matchLabels": {
                    "gateway.envoyproxy.io/owning-gateway-name": "sophia",
                    "gateway.envoyproxy.io/owning-gateway-namespace": NAMESPACE,
                }
            },
        },
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {
            "podSelector": {
                "matchExpressions": [{"key": "sophia.ai/service", "operator": "In", "values": ["customer-api"]}]
            }
        },
    ]
    assert all(rule["ports"] == [{"protocol": "TCP", "port": 8080.0}] for rule in billing["ingress"])
    # customer-api calls billing, so it may reach billing; a service nobody calls admits no service.
    customer = policies["customer-api"]["spec"]
    callees = {
        value
        for rule in customer["egress"]
        for peer in peers(rule)
        for e in peer.get("podSelector", {}).get("matchExpressions", [])
        for value in e["values"]
    }
    assert {"billing", "inference", "agent-orchestrator", "reporting", "ingestion", "document-store"} == callees
    assert len(customer["ingress"]) == 2


def route_weights(run: StackRun, service: str) -> dict[str, float]:
    routes = objects(run, HTTP_ROUTE)
    rule = next(r for route in routes.values() for r in route["spec"].get("rules", []) if r.get("name") == service)
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def test_a_service_on_two_pools_is_weighted_by_gpu_capability() -> None:
    weights = route_weights(prod(), "inference")
    expected = split(WEIGHT_TOTAL, [GPU_TFLOPS[POOL_TYPES["ai-core"]], GPU_TFLOPS[POOL_TYPES["data"]]])
    assert weights == {"inference-ai-core": expected[0], "inference-data": expected[1]}
    assert expected == [760, 240]  # GH200 989 TFLOPS against A100 312


def test_the_canary_gets_its_weight_and_a_config_change_rolls_it_back() -> None:
    assert route_weights(prod(), "customer-api") == {
        "customer-api-business": 900.0,
        "customer-api-business-next": 100.0,
    }
    canary = objects(prod(), SCALED_OBJECT)["customer-api-business-next"]["spec"]
    assert (canary["minReplicaCount"], canary["maxReplicaCount"]) == (1.0, 2.0)  # 10 % of 3-12, at least one
    # Rollback: remove `next`; one `pulumi up` sends everything back to the stable release.
    rolled_back = with_services(service_config("customer-api", next=None))
    assert route_weights(rolled_back, "customer-api") == {"customer-api": 1000.0}
    assert "customer-api-business-next" not in objects(rolled_back, DEPLOYMENT)
    # Blue-green: weight 100 switches all traffic, the stable release stays warm for an instant switch back.
    switched = with_services(
        service_config("customer-api", next={"image": "ghcr.io/sophia-ai/customer-api:2.8.0", "weight": 100})
    )
    assert route_weights(switched, "customer-api") == {
        "customer-api-business": 0.0,
        "customer-api-business-next": 1000.0,
    }
    assert objects(switched, SCALED_OBJECT)["customer-api-business"]["spec"]["minReplicaCount"] == 3.0


def test_scaling_follows_the_plans_triggers_fast_up_slow_down() -> None:
    scaler = objects(prod(), SCALED_OBJECT)["billing-business"]["spec"]
    assert scaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "billing-business"}
    assert (scaler["minReplicaCount"], scaler["maxReplicaCount"]) == (2.0, 6.0)
    triggers = {t["name"]: t for t in scaler["triggers"]}
    assert triggers["cpu"]["metadata"] == {"value": "70"}
    assert triggers["memory"]["metadata"] == {"value": "80"}
    assert triggers["queue"]["metadata"]["threshold"] == "100"
    assert triggers["latency"]["metadata"]["threshold"] == "500"
    assert triggers["queue"]["metadata"]["serverAddress"] == (
        "http://monitoring-kube-prometheus-prometheus.monitoring.svc:9090"
    )
    behavior = scaler["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0.0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300.0
    assert {(p["type"], p["value"], p["periodSeconds"]) for p in behavior["scaleDown"]["policies"]} == {
        ("Pods", 1.0, 60.0),
        ("Percent", 10.0, 60.0),
    }


def test_an_off_hours_service_goes_to_zero_by_the_cron_scaler() -> None:
    scaler = objects(prod(), SCALED_OBJECT)["playground-dev"]["spec"]
    assert scaler["minReplicaCount"] == 0.0
    cron = next(t for t in scaler["triggers"] if t["type"] == "cron")
    assert cron["metadata"] == {
        "timezone": "America/Los_Angeles",
        "start": "0 7 * * 1-5",
        "end": "0 20 * * 1-5",
        "desiredReplicas": "1",
    }
    # Always-on services have no cron trigger and never go below their minimum.
    assert all(t["type"] != "cron" for t in objects(prod(), SCALED_OBJECT)["billing-business"]["spec"]["triggers"])


def test_one_route_per_kind_and_a_traffic_policy_per_rule() -> None:
    routes = {name: r for name, r in objects(prod(), HTTP_ROUTE).items() if name not in ("https-redirect", "health")}
    assert set(routes) == {"ai", "business", "data"}
    policies = objects(prod(), TRAFFIC_POLICY)
    for route, document in routes.items():
        spec = document["spec"]
        assert spec["hostnames"] == ["api.sophia.ai", "api-primary.sophia.ai"]
        assert spec["parentRefs"][0]["sectionName"] == "https"
        for rule in spec["rules"]:
            service = SERVICES[rule["name"]]
            assert service.kind.value == route
            assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": f"/{service.name}"}}]
            assert rule["timeouts"] == {"request": f"{service.request_timeout_seconds}s"}
            policy = policies[service.name]["spec"]
            assert policy["targetRefs"] == [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route, "sectionName": service.name}
            ]
            assert policy["circuitBreaker"]["retryBudget"]["percent"] == {"numerator": 20.0, "denominator": 100.0}
            assert policy["healthCheck"]["passive"]["consecutive5XxErrors"] == 5.0
            assert ("compressor" in policy) is (route != "ai")


def test_a_kind_past_sixteen_services_continues_in_more_routes() -> None:
    template = service_config("billing")[6]
    many = [{**template, "name": f"svc-{i:02d}", "callers": []} for i in range(40)]
    fleet = {**decoded(stack_config(), "sophia:fleet")}
    fleet["gateway"] = {**fleet["gateway"], "healthService": "svc-00"}
    run = run_stack("prod", config_overrides={"sophia:services": json.dumps(many), "sophia:fleet": json.dumps(fleet)})
    routes = {name: r for name, r in objects(run, HTTP_ROUTE).items() if name not in ("https-redirect", "health")}
    assert {name: len(r["spec"]["rules"]) for name, r in routes.items()} == {
        "business": 16,
        "business-2": 16,
        "business-3": 8,
    }
    assert len(objects(run, TRAFFIC_POLICY)) == 40


def test_the_gateway_serves_https_with_a_certificate_for_every_host() -> None:
    run = prod()
    [gateway] = [r.inputs for r in run.by_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")]
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    assert (listeners["https"]["port"], listeners["https"]["protocol"]) == (443.0, "HTTPS")
    assert listeners["https"]["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "gateway-tls"}]
    [certificate] = [
        r.inputs
        for r in run.by_type("kubernetes:cert-manager.io/v1:Certificate")
        if r.inputs["metadata"].get("namespace") == NAMESPACE
    ]
    assert certificate["spec"]["dnsNames"] == ["api.sophia.ai", "api-primary.sophia.ai"]
    assert certificate["spec"]["secretName"] == "gateway-tls"
    [issuer] = [r.inputs for r in run.by_type("kubernetes:cert-manager.io/v1:ClusterIssuer")]
    assert issuer["spec"]["acme"]["solvers"] == [
        {
            "dns01": {
                "route53": {
                    "region": "us-west-1",
                    "hostedZoneID": "Z0SOPHIAEXAMPLE",
                    "accessKeyIDSecretRef": {"name": "route53-acme", "key": "access-key-id"},
                    "secretAccessKeySecretRef": {"name": "route53-acme", "key": "secret-access-key"},
                }
            }
        }
    ]
    # The solver's key: an IAM user that may change records in the one zone, its key a secret.
    credentials = run.named("sophia-prod-services-gateway-acme-dns")
    assert credentials.inputs["metadata"]["namespace"] == "cert-manager"
    assert is_secret(credentials.inputs["stringData"])
    policy = json.loads(run.named("sophia-prod-acme-dns-policy").inputs["policy"])
    assert {
        a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    } == {
        "route53:GetChange",
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
        "route53:ListHostedZonesByName",
    }
    assert "arn:aws:route53:::hostedzone/Z0SOPHIAEXAMPLE" in {st["Resource"] for st in policy["Statement"]}
    [proxy] = [r.inputs for r in run.by_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")]
    pod = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["pod"]
    assert pod["nodeSelector"] == {"sophia.ai/pool": "business"}


def test_operators_and_tracing_charts_are_pinned() -> None:
    releases = {r.inputs["chart"]: r for r in prod().by_type(RELEASE)}
    assert releases["keda"].inputs["version"] == KEDA_VERSION == "2.20.2"
    assert releases["oci://docker.io/envoyproxy/gateway-helm"].inputs["version"] == ENVOY_GATEWAY_VERSION == "v1.9.0"
    assert releases["opentelemetry-collector"].inputs["version"] == COLLECTOR_CHART_VERSION
    assert releases["jaeger"].inputs["version"] == JAEGER_CHART_VERSION
    for chart in ("keda", "oci://docker.io/envoyproxy/gateway-helm"):
        # Their charts own CRDs: deleting a release would delete every ScaledObject or route. Kept in
        # the cluster when it leaves the stack; not protected, or switching to `existing` would fail
        # (tests/components/test_operator_switch.py).
        assert releases[chart].retain_on_delete is True
        assert releases[chart].protect is False


def test_services_send_traces_over_tls_to_the_collector() -> None:
    pod = objects(prod(), DEPLOYMENT)["billing-business"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otel-collector.tracing.svc:4317"
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == "/etc/sophia/tracing/ca.crt"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert {"name": "tracing-ca", "secret": {"secretName": "tracing-ca"}} in pod["volumes"]
    [jaeger] = [r for r in prod().by_type(RELEASE) if r.inputs["chart"] == "jaeger"]
    storage = jaeger.inputs["values"]["userconfig"]["extensions"]["jaeger_storage"]["backends"]["spans"]["badger"]
    assert storage["ttl"] == {"spans": "72h"}


def test_every_fleet_object_passes_its_schema() -> None:
    fleet = [
        (name, manifest) for name, manifest in kubernetes_objects(prod()) if name.startswith("sophia-prod-services")
    ]
    assert len(fleet) > 100
    problems = {name: validate_manifest(manifest, "1.33") for name, manifest in fleet}
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_no_credential_of_the_fleet_is_in_plaintext() -> None:
    fleet: list[RegisteredResource] = [r for r in prod().resources if "sophia:services:" in r.urn]
    assert fleet
    assert list(plaintext_secrets(prod())) == []


def test_operators_taken_from_the_cluster_are_not_installed() -> None:
    operators = {**decoded(stack_config(), "sophia:operators"), "keda": "existing", "envoyGateway": "existing"}
    run = run_stack("prod", config_overrides={"sophia:operators": json.dumps(operators)})
    charts = {r.inputs["chart"] for r in run.by_type(RELEASE)}
    assert "keda" not in charts
    assert "oci://docker.io/envoyproxy/gateway-helm" not in charts
    # The fleet's objects are the same: the cluster's operators serve the same CRDs.
    assert len(objects(run, SCALED_OBJECT)) == len(objects(prod(), SCALED_OBJECT))
