"""`Monitoring`: Prometheus, Alertmanager and Grafana (kube-prometheus-stack), the alert rules,
ServiceMonitors for every store's exporter, GPU metrics from the pools' nodes, and the
Pushgateway the restore-verification jobs report to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.compute.cloud_init import POOL_LABEL
from components.data.placement import PLATFORM_RELABELING, PUSH_USER, RESTORE_CHECK_LABEL, ScrapeTarget
from components.kube import container_security, pod_security, resources
from components.observability.alert_rules import CostFacts, PoolFacts, render_rule_groups
from components.observability.alertmanager_config import (
    PAGERDUTY_KEY_FILE,
    RECEIVERS_SECRET,
    SLACK_URL_FILE,
    render_alertmanager_config,
    render_alertmanager_config_resource,
)
from settings.data import DrReplicationSettings
from settings.observability import MonitoringSettings

# kube-prometheus-stack 88.3.0: the newest chart that ships prometheus-operator v0.93.0, the release
# of the CRDs in shared/reference (88.4.0 and later ship v0.93.1).
CHART = "kube-prometheus-stack"
CHART_VERSION = "88.3.0"
CHART_REPO = "https://prometheus-community.github.io/helm-charts"
# The chart's Prometheus Service for the release `monitoring` (fullname `monitoring-kube-prometheus`).
PROMETHEUS_SERVICE = "monitoring-kube-prometheus-prometheus"
PROMETHEUS_PORT = 9090
PUSHGATEWAY_IMAGE = "prom/pushgateway:v1.11.0"
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_AUTH_SECRET = "pushgateway-auth"  # noqa: S105 - a Secret's name, not its value
# What a managed or k3s control plane does not let Prometheus scrape: neither scraped nor alerted on.
UNEXPOSED_COMPONENTS = ("kubeControllerManager", "kubeScheduler", "kubeProxy", "kubeEtcd")
UNEXPOSED_RULES = ("etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "kubeProxy")
DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"
DCGM_PORT = 9400
GRAFANA_ADMIN_SECRET = "grafana-admin"  # noqa: S105 - a Secret's name, not its value


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of `Monitoring`."""

    settings: MonitoringSettings
    """Thresholds, routing and retention (`sophia:monitoring`)."""
    namespace: str
    """Namespace of the stack (`sophia:kubernetes.monitoringNamespace`)."""
    storage_class: str
    pagerduty_routing_key: pulumi.Input[str]
    """Secret `sophia:alertPagerdutyRoutingKey`."""
    slack_webhook_url: pulumi.Input[str]
    """Secret `sophia:alertSlackWebhookUrl`."""
    scrape_targets: Sequence[ScrapeTarget]
    """One per store exporter; each becomes a ServiceMonitor."""
    pools: Sequence[PoolFacts]
    cost: CostFacts
    restore_checked_stores: Sequence[str]
    """Stores with a restore-check job; each gets a `RestoreVerificationMissing` alert."""
    protect: bool
    """Protect the Pushgateway's volume (the restore results): true in prod."""
    dr_replication: DrReplicationSettings | None = None
    """Where the DR replica streams from, for its lag alerts."""
    data_namespace: str | None = None
    """Where the failover guard runs, when the DR replication has one (`failoverLeaseTable`)."""
    install_stack: bool = True
    """Install kube-prometheus-stack (`sophia:operators.prometheusStack`), or use the cluster's."""
    pusher_namespace: str = "sophia-data"
    """Namespace of the restore-check jobs, the only pods that may push results."""
    fleet_namespace: str | None = None
    """The service fleet's namespace, whose services have their own HTTP alerts."""


def chart_values(args: MonitoringArgs) -> dict[str, Any]:
    """kube-prometheus-stack values (pure; holds no secret)."""
    settings = args.settings
    return {
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{settings.retention_days}d",
                # Pick up every ServiceMonitor, PodMonitor and rule in the cluster, not only the chart's.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": args.storage_class,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{settings.storage_gib}Gi"}},
                        }
                    }
                },
            }
        },
        "alertmanager": {
            "config": render_alertmanager_config(settings.routing),
            "alertmanagerSpec": {"secrets": [RECEIVERS_SECRET], "replicas": 2},
        },
        "grafana": {
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"}
        },
        # GPU nodes carry their pool as a label; the cost and capacity rules count nodes by it.
        "kube-state-metrics": {"metricLabelsAllowlist": [f"nodes=[{POOL_LABEL}]"]},
        # A managed or k3s cluster exposes none of these: no scrape that can only fail, no rule on them.
        **{component: {"enabled": False} for component in UNEXPOSED_COMPONENTS},
        "defaultRules": {"rules": dict.fromkeys(UNEXPOSED_RULES, False)},
    }


def service_monitor_spec(target: ScrapeTarget) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "port": target.port,
        "path": "/metrics",
        "interval": "30s",
        "relabelings": [PLATFORM_RELABELING],  # one of the platform's own targets: ServiceDown watches it
    }
    if target.tls_ca_secret is not None:
        endpoint["scheme"] = "https"
        endpoint["tlsConfig"] = {
            "ca": {"secret": {"name": target.tls_ca_secret, "key": "ca.crt"}},
            "serverName": target.tls_server_name,
        }
    if target.bearer_secret is not None:
        secret, key = target.bearer_secret
        endpoint["authorization"] = {"type": "Bearer", "credentials": {"name": secret, "key": key}}
    return {
        "selector": {"matchLabels": dict(target.selector)},
        "namespaceSelector": {"matchNames": [target.namespace]},
        "endpoints": [endpoint],
    }


class Monitoring(pulumi.ComponentResource):
    """Push restore results to `pushgateway_url`; Grafana's admin login is in Secret `grafana-admin`."""

    pushgateway_url: str
    prometheus_url: str
    """Prometheus inside the cluster (the KEDA triggers query it)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:monitoring:Monitoring", name, None, opts)
        ns = args.namespace
        self.pushgateway_url = f"http://pushgateway.{ns}.svc:{PUSHGATEWAY_PORT}"
        self.prometheus_url = f"http://{PROMETHEUS_SERVICE}.{ns}.svc:{PROMETHEUS_PORT}"
        child = pulumi.ResourceOptions(parent=self)
        push_password = random.RandomPassword(f"{name}-push-password", length=40, special=False, opts=child)
        self.push_password: pulumi.Output[str] = pulumi.Output.secret(push_password.result)
        """The Pushgateway password of `PUSH_USER`, for the restore-check jobs only."""
        self._push_password = push_password
        settings = args.settings
        ns_resources: list[pulumi.Resource] = []
        # What only the installed stack has (its namespace, release and Grafana login) is kept in the
        # cluster when it leaves the program: switching `operators.prometheusStack` to `existing`
        # must not uninstall the chart nor delete the namespace, and with it the Pushgateway's
        # volume. Not `protect`: the engine refuses to drop a protected resource even when it is
        # retained, and the switch would fail instead.
        installed = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        if args.install_stack:
            ns_resources.append(
                k8s.core.v1.Namespace(
                    f"{name}-namespace",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=ns,
                        # node-exporter and the GPU exporter read the host: the namespace cannot be restricted.
                        labels={"pod-security.kubernetes.io/enforce": "privileged", "sophia.ai/tier": "monitoring"},
                    ),
                    opts=installed,
                )
            )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=ns_resources)
        receivers = k8s.core.v1.Secret(
            f"{name}-receivers",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RECEIVERS_SECRET, namespace=ns),
            string_data={
                PAGERDUTY_KEY_FILE: pulumi.Output.secret(args.pagerduty_routing_key),
                SLACK_URL_FILE: pulumi.Output.secret(args.slack_webhook_url),
            },
            opts=in_namespace,
        )
        labelled = settings.resource_labels or None
        stack: list[pulumi.Resource] = []
        if args.install_stack:
            grafana_password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False, opts=child)
            grafana_admin = k8s.core.v1.Secret(
                f"{name}-grafana-admin",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=ns),
                string_data={"admin-user": "admin", "admin-password": grafana_password.result},
                opts=pulumi.ResourceOptions.merge(in_namespace, installed),
            )
            self.release = k8s.helm.v3.Release(
                f"{name}-stack",
                k8s.helm.v3.ReleaseArgs(
                    name="monitoring",
                    chart=CHART,
                    version=CHART_VERSION,
                    namespace=ns,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
                    values=chart_values(args),
                    atomic=True,
                ),
                opts=pulumi.ResourceOptions.merge(
                    installed, pulumi.ResourceOptions(depends_on=[*ns_resources, receivers, grafana_admin])
                ),
            )
            stack.append(self.release)
        else:
            # The cluster's Alertmanager gets our routing as an AlertmanagerConfig.
            k8s.apiextensions.CustomResource(
                f"{name}-routing",
                api_version="monitoring.coreos.com/v1alpha1",
                kind="AlertmanagerConfig",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="sophia-routing", namespace=ns, labels=labelled),
                spec=render_alertmanager_config_resource(settings.routing),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[receivers]),
            )
        self.ready: list[pulumi.Resource] = [*ns_resources, *stack]
        """What objects of the Prometheus Operator's kinds wait for: the chart, where this stack installs it."""
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[*ns_resources, *stack])
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="sophia-alerts", namespace=ns, labels=labelled),
            spec=render_rule_groups(
                settings.thresholds,
                args.pools,
                args.cost,
                args.restore_checked_stores,
                settings.restore_verification.stale_after_hours,
                dr_addresses=args.dr_replication.allowed_cidrs if args.dr_replication else (),
                dr_lag_seconds=args.dr_replication.lag_alert_seconds if args.dr_replication else 5.0,
                fleet_namespace=args.fleet_namespace,
                failover_guard_namespace=(
                    args.data_namespace
                    if args.dr_replication is not None and args.dr_replication.failover_lease_table is not None
                    else None
                ),
            ),
            opts=after_chart,
        )
        for target in args.scrape_targets:
            k8s.apiextensions.CustomResource(
                f"{name}-{target.name}",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=target.name, namespace=target.namespace, labels=labelled),
                spec=service_monitor_spec(target),
                opts=after_chart,
            )
        self._pushgateway(name, ns, args, after_chart)
        if args.pools:
            self._gpu_exporter(name, ns, after_chart)
        self.register_outputs({"pushgateway": self.pushgateway_url})

    def _pushgateway(self, name: str, ns: str, args: MonitoringArgs, opts: pulumi.ResourceOptions) -> None:
        """Keeps the restore jobs' last results (on a volume, so a restart does not lose them).

        Only the restore checks can push: every request needs basic auth (the Pushgateway's web
        config, bcrypt hashes), the push password is only in the restore-check pods' Secret, and a
        NetworkPolicy admits only those pods and Prometheus (which scrapes as its own user)."""
        match = {"app.kubernetes.io/name": "pushgateway"}
        scrape_password = random.RandomPassword(
            f"{name}-pushgateway-scrape-password", length=40, special=False, opts=opts
        )

        def render(hashes: list[str]) -> str:
            return f"basic_auth_users:\n  {PUSH_USER}: {hashes[0]}\n  prometheus: {hashes[1]}\n"

        # bcrypt hashes of Pulumi secrets: secret outputs themselves.
        web_config: pulumi.Output[str] = pulumi.Output.all(
            self._push_password.bcrypt_hash, scrape_password.bcrypt_hash
        ).apply(render)
        auth = k8s.core.v1.Secret(
            f"{name}-pushgateway-auth",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PUSHGATEWAY_AUTH_SECRET, namespace=ns),
            string_data={
                "web.yml": web_config,
                "username": "prometheus",
                "password": scrape_password.result,
            },
            opts=opts,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-pushgateway-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="pushgateway", namespace=ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": args.pusher_namespace}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={RESTORE_CHECK_LABEL: "true"}),
                            ),
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"app.kubernetes.io/name": "prometheus"}
                                )
                            ),
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PUSHGATEWAY_PORT)],
                    )
                ],
            ),
            opts=opts,
        )
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pushgateway-data",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="pushgateway-data", namespace=ns),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=args.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": "1Gi"}),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=args.protect)),
        )
        k8s.apps.v1.Deployment(
            f"{name}-pushgateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="pushgateway", namespace=ns, labels=match),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),  # one writer of the volume
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=match),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=pod_security(65534),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="pushgateway",
                                image=PUSHGATEWAY_IMAGE,
                                args=[
                                    "--persistence.file=/data/metrics",
                                    "--persistence.interval=1m",
                                    "--web.config.file=/etc/pushgateway/web.yml",
                                ],
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PUSHGATEWAY_PORT)],
                                security_context=container_security(),
                                resources=resources("50m", "64Mi", "200m"),
                                # Every path needs basic auth, /-/ready too: the probe only checks the port.
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=PUSHGATEWAY_PORT)
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data"),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="web-config", mount_path="/etc/pushgateway", read_only=True
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="data",
                                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name="pushgateway-data"
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="web-config",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=PUSHGATEWAY_AUTH_SECRET,
                                    items=[k8s.core.v1.KeyToPathArgs(key="web.yml", path="web.yml")],
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[claim, auth])),
        )
        k8s.core.v1.Service(
            f"{name}-pushgateway-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="pushgateway", namespace=ns, labels=match),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=match, ports=[k8s.core.v1.ServicePortArgs(name="http", port=PUSHGATEWAY_PORT)]
            ),
            opts=opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-pushgateway-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="pushgateway", namespace=ns, labels=args.settings.resource_labels or None
            ),
            # honorLabels: keep the `store` label the jobs pushed instead of the scrape's own.
            spec={
                "selector": {"matchLabels": match},
                "endpoints": [
                    {
                        "port": "http",
                        "honorLabels": True,
                        "interval": "60s",
                        "basicAuth": {
                            "username": {"name": PUSHGATEWAY_AUTH_SECRET, "key": "username"},
                            "password": {"name": PUSHGATEWAY_AUTH_SECRET, "key": "password"},
                        },
                        "relabelings": [PLATFORM_RELABELING],
                    }
                ],
            },
            opts=opts,
        )

    def _gpu_exporter(self, name: str, ns: str, opts: pulumi.ResourceOptions) -> None:
        """NVIDIA DCGM exporter on every node that joined from a GPU pool (labelled `sophia.ai/pool`)."""
        match = {"app.kubernetes.io/name": "dcgm-exporter"}
        k8s.apps.v1.DaemonSet(
            f"{name}-dcgm-exporter",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="dcgm-exporter", namespace=ns, labels=match),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=match),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=match),
                    spec=k8s.core.v1.PodSpecArgs(
                        runtime_class_name="nvidia",
                        security_context=pod_security(65534),
                        affinity=k8s.core.v1.AffinityArgs(
                            node_affinity=k8s.core.v1.NodeAffinityArgs(
                                required_during_scheduling_ignored_during_execution=k8s.core.v1.NodeSelectorArgs(
                                    node_selector_terms=[
                                        k8s.core.v1.NodeSelectorTermArgs(
                                            match_expressions=[
                                                k8s.core.v1.NodeSelectorRequirementArgs(
                                                    key=POOL_LABEL, operator="Exists"
                                                )
                                            ]
                                        )
                                    ]
                                )
                            )
                        ),
                        # GPU nodes are tainted with their pool; the exporter must run there anyway.
                        tolerations=[
                            k8s.core.v1.TolerationArgs(key=POOL_LABEL, operator="Exists", effect="NoSchedule")
                        ],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="dcgm-exporter",
                                image=DCGM_IMAGE,
                                ports=[k8s.core.v1.ContainerPortArgs(name="metrics", container_port=DCGM_PORT)],
                                # Utilisation, memory, power and temperature come through NVML, which needs
                                # no privilege; the profiling counters (DCGM_FI_PROF_*) would need SYS_ADMIN.
                                security_context=container_security(),
                                resources=resources("100m", "512Mi", "500m"),
                            )
                        ],
                    ),
                ),
            ),
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{name}-dcgm-exporter-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="dcgm-exporter", namespace=ns, labels=match),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                selector=match,
                ports=[k8s.core.v1.ServicePortArgs(name="metrics", port=DCGM_PORT)],
            ),
            opts=opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-dcgm-exporter-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="dcgm-exporter", namespace=ns),
            spec={
                "selector": {"matchLabels": match},
                "endpoints": [
                    {
                        "port": "metrics",
                        "interval": "30s",
                        # Label each GPU series with the node it came from.
                        "relabelings": [
                            {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"},
                            PLATFORM_RELABELING,
                        ],
                    }
                ],
            },
            opts=opts,
        )
