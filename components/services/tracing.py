"""`Tracing`: the fleet's traces, from the services' OpenTelemetry SDKs through an OpenTelemetry
Collector into Jaeger (both from their pinned Helm charts), over TLS.

Services export OTLP/gRPC to `otel-collector.<tracing namespace>.svc:4317` (TLS; the CA is in the
Secret `tracing-ca` of the fleet's namespace) with parent-based ratio sampling
(`sophia:fleet.tracing.sampleRatio`). The collector limits its memory, batches and forwards to
Jaeger (TLS, verified). Jaeger v2 keeps spans in Badger on a volume for `retentionHours`; its UI
(16686) is reachable from the monitoring namespace (Grafana's Jaeger datasource) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.data.certificate import ServiceCertificate, ServiceCertificateArgs
from components.kube import dns_egress, namespace_selector

# opentelemetry-collector chart 0.170.0 ships collector 0.158.0 (open-telemetry/opentelemetry-helm-charts).
COLLECTOR_CHART = "opentelemetry-collector"
COLLECTOR_CHART_VERSION = "0.170.0"
COLLECTOR_REPO = "https://open-telemetry.github.io/opentelemetry-helm-charts"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-k8s"
COLLECTOR_VERSION = "0.158.0"
# jaeger chart 4.11.1 ships Jaeger v2.19.0 (jaegertracing/helm-charts).
JAEGER_CHART = "jaeger"
JAEGER_CHART_VERSION = "4.11.1"
JAEGER_REPO = "https://jaegertracing.github.io/helm-charts"
COLLECTOR = "otel-collector"
JAEGER = "jaeger"
OTLP_PORT = 4317
QUERY_PORT = 16686
HEALTH_PORT = 13133
METRICS_PORT = 8888
CA_SECRET = "tracing-ca"  # noqa: S105 - a Secret's name, not its value
TLS_DIR = "/etc/tracing/tls"
# Jaeger listens on its pod's address (from the downward API), as the collector chart does.
POD_IP = "${env:POD_IP}"
JAEGER_UID = 10001


@dataclass(frozen=True)
class TracingArgs:
    """Inputs of `Tracing`."""

    namespace: str
    """Namespace of the collector and Jaeger."""
    client_namespaces: Sequence[str]
    """Namespaces whose pods send traces (the fleet's); each gets the CA as a Secret."""
    monitoring_namespace: str
    """Namespace of Prometheus and Grafana (scrapes, Jaeger's UI)."""
    sample_ratio: float
    retention_hours: int
    storage_gib: int
    storage_class: str
    protect: bool
    """Protect Jaeger's span volume: true in prod."""


def collector_config() -> dict[str, Any]:
    """The collector's whole configuration (the chart's `alternateConfig`: nothing merged in)."""
    tls_server = {"cert_file": f"{TLS_DIR}/tls.crt", "key_file": f"{TLS_DIR}/tls.key"}
    return {
        "extensions": {"health_check": {"endpoint": "${env:MY_POD_IP}:" + str(HEALTH_PORT)}},
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": "${env:MY_POD_IP}:" + str(OTLP_PORT), "tls": tls_server}}}
        },
        "processors": {
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "batch": {"send_batch_size": 8192, "timeout": "5s"},
        },
        "exporters": {
            "otlp": {
                "endpoint": f"{JAEGER}:{OTLP_PORT}",
                "tls": {"ca_file": f"{TLS_DIR}/ca.crt"},
                "sending_queue": {"enabled": True, "queue_size": 5000},
                "retry_on_failure": {"enabled": True},
            }
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {
                "metrics": {
                    "readers": [
                        {"pull": {"exporter": {"prometheus": {"host": "${env:MY_POD_IP}", "port": METRICS_PORT}}}}
                    ]
                }
            },
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp"]}
            },
        },
    }


def jaeger_config(retention_hours: int) -> dict[str, Any]:
    """Jaeger v2's configuration (an OpenTelemetry Collector distribution): OTLP in over TLS, Badger
    on the volume at /badger, spans kept `retention_hours` (jaeger cmd/jaeger/config-badger.yaml)."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "detailed",
                    "readers": [{"pull": {"exporter": {"prometheus": {"host": POD_IP, "port": METRICS_PORT}}}}],
                },
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"{POD_IP}:{HEALTH_PORT}"}},
            "jaeger_query": {
                "storage": {"traces": "spans"},
                "http": {"endpoint": f"{POD_IP}:{QUERY_PORT}"},
            },
            "jaeger_storage": {
                "backends": {
                    "spans": {
                        "badger": {
                            "directories": {"keys": "/badger/keys", "values": "/badger/values"},
                            "ephemeral": False,
                            "ttl": {"spans": f"{retention_hours}h"},
                        }
                    }
                }
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {
                        "endpoint": f"{POD_IP}:{OTLP_PORT}",
                        "tls": {"cert_file": f"{TLS_DIR}/tls.crt", "key_file": f"{TLS_DIR}/tls.key"},
                    }
                }
            }
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "spans"}},
    }


def _restricted() -> dict[str, Any]:
    """The restricted Pod Security profile's container settings, as chart values."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _tls_volume(secret: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [{"name": "tls", "secret": {"secretName": secret}}],
        [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True}],
    )


def collector_values() -> dict[str, Any]:
    volumes, mounts = _tls_volume(f"{COLLECTOR}-tls")
    disabled = ["jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin", "otlp-http"]
    return {
        "mode": "deployment",
        "fullnameOverride": COLLECTOR,
        "replicaCount": 2,
        "image": {"repository": COLLECTOR_IMAGE, "tag": COLLECTOR_VERSION},
        "command": {"name": "otelcol-k8s"},
        "alternateConfig": collector_config(),
        "ports": {
            **{port: {"enabled": False} for port in disabled},
            "otlp": {"enabled": True, "containerPort": OTLP_PORT, "servicePort": OTLP_PORT, "protocol": "TCP"},
            "metrics": {"enabled": True},
        },
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": JAEGER_UID,
            "runAsGroup": JAEGER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": _restricted(),
        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "extraVolumes": volumes,
        "extraVolumeMounts": mounts,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "serviceMonitor": {"enabled": True},
    }


def jaeger_values(retention_hours: int) -> dict[str, Any]:
    volumes, mounts = _tls_volume(f"{JAEGER}-tls")
    volumes.append({"name": "badger", "persistentVolumeClaim": {"claimName": f"{JAEGER}-badger"}})
    mounts.append({"name": "badger", "mountPath": "/badger"})
    return {
        "userconfig": jaeger_config(retention_hours),
        "jaeger": {
            "replicas": 1,  # Badger is one process's store; Recreate (the chart's strategy) hands it over
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": JAEGER_UID,
                "runAsGroup": JAEGER_UID,
                "fsGroup": JAEGER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "securityContext": _restricted(),
            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "extraEnv": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "extraVolumes": volumes,
            "extraVolumeMounts": mounts,
        },
    }


class Tracing(pulumi.ComponentResource):
    """`otlp_endpoint` (https) and `ca_secret` (key ca.crt) are what services need."""

    otlp_endpoint: str
    ca_secret: str

    def __init__(self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:services:Tracing", name, None, opts)
        ns = args.namespace
        self.otlp_endpoint = f"https://{COLLECTOR}.{ns}.svc:{OTLP_PORT}"
        self.ca_secret = CA_SECRET
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns, labels={"pod-security.kubernetes.io/enforce": "restricted", "sophia.ai/tier": "tracing"}
            ),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        self._network_policies(name, args, in_namespace)
        certificates = {
            role: ServiceCertificate(
                f"{name}-{role}-tls",
                ServiceCertificateArgs(
                    namespace=ns,
                    secret_name=f"{role}-tls",
                    dns_names=[f"{role}.{ns}.svc", f"{role}.{ns}.svc.cluster.local", role],
                ),
                in_namespace,
            )
            for role in (COLLECTOR, JAEGER)
        }
        # Every client namespace gets the CA to verify the collector (a Secret: a ConfigMap's data
        # would reach policies unknown in a first preview, and ConfigMaps are for configuration).
        ca_maps = [
            k8s.core.v1.Secret(
                f"{name}-ca-{client}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CA_SECRET, namespace=client),
                string_data={"ca.crt": certificates[COLLECTOR].ca_cert_pem},
                opts=child,
            )
            for client in args.client_namespaces
        ]
        badger = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-jaeger-badger",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{JAEGER}-badger", namespace=ns),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=args.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{args.storage_gib}Gi"}),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace], protect=args.protect),
        )
        jaeger = k8s.helm.v3.Release(
            f"{name}-jaeger",
            k8s.helm.v3.ReleaseArgs(
                name=JAEGER,
                chart=JAEGER_CHART,
                version=JAEGER_CHART_VERSION,
                namespace=ns,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=JAEGER_REPO),
                values=jaeger_values(args.retention_hours),
                atomic=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[badger, certificates[JAEGER]]),
        )
        self.collector = k8s.helm.v3.Release(
            f"{name}-collector",
            k8s.helm.v3.ReleaseArgs(
                name=COLLECTOR,
                chart=COLLECTOR_CHART,
                version=COLLECTOR_CHART_VERSION,
                namespace=ns,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=COLLECTOR_REPO),
                values=collector_values(),
                atomic=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[jaeger, certificates[COLLECTOR]]),
        )
        self.ready: list[pulumi.Resource] = [*ca_maps, self.collector]
        """What the services wait for: the CA in their namespace and the collector."""
        self.register_outputs({"otlpEndpoint": self.otlp_endpoint})

    @staticmethod
    def _network_policies(name: str, args: TracingArgs, opts: pulumi.ResourceOptions) -> None:
        """Default deny; the clients reach the collector, the collector reaches Jaeger, monitoring
        scrapes both and reaches Jaeger's UI."""
        ns = args.namespace

        def port(number: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
            return k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=number)

        def app(instance: str) -> k8s.meta.v1.LabelSelectorArgs:
            return k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/instance": instance})

        monitoring = namespace_selector(args.monitoring_namespace)
        policies = {
            "default-deny": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            COLLECTOR: k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=app(COLLECTOR),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[namespace_selector(n) for n in args.client_namespaces], ports=[port(OTLP_PORT)]
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[monitoring], ports=[port(METRICS_PORT)]),
                ],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=app(JAEGER))], ports=[port(OTLP_PORT)]
                    ),
                    dns_egress(),
                ],
            ),
            JAEGER: k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=app(JAEGER),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=app(COLLECTOR))],
                        ports=[port(OTLP_PORT)],
                    ),
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[monitoring], ports=[port(METRICS_PORT), port(QUERY_PORT)]
                    ),
                ],
                egress=[dns_egress()],
            ),
        }
        for policy, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy, namespace=ns),
                spec=spec,
                opts=opts,
            )
