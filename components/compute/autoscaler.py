"""`ClusterAutoscaler`: upstream cluster-autoscaler (pinned image, `externalgrpc`, price expander) and the
Lambda node-group service (`autoscaler/`) in the primary cluster, talking mTLS as upstream's example does.

Pulumi keeps each pool's floor (`GpuPool`); the node groups the service serves hold only burst instances,
up to `max` less the floor. The renderers here are pure: the pools document, the cloud config, the flags.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from autoscaler.config import OWNER_TAG, JoinSpec, OffHours, PoolSpec, ServiceConfig, Taint
from autoscaler.join import POOL_LABEL
from components.compute.gpu_pool import GpuPool
from components.kube import container_security, dns_egress, pod_security, resources
from providers.lambda_cloud.launcher import wait_timeout_s
from providers.lambda_cloud.resources import LambdaBurstSweep, LambdaBurstSweepArgs
from settings.compute import AutoscalerSettings, ClusterJoinSettings, GpuPoolSettings

# Upstream cluster-autoscaler; the externalgrpc protocol in autoscaler/protos is the one from 1.35.0 on
# (bytes nodeBytes, google.protobuf durations): older releases cannot read its template nodes.
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.36.0"
SERVICE_NAME = "lambda-node-groups"
SERVICE_PORT = 8086  # upstream example's port
CA_NAME = "cluster-autoscaler"
SERVER_TLS_SECRET = "lambda-node-groups-tls"  # noqa: S105 - Secret names, not values
CLIENT_TLS_SECRET = "cluster-autoscaler-grpc-client-tls"  # noqa: S105
CREDENTIALS_SECRET = "lambda-node-groups-credentials"  # noqa: S105
POOLS_CONFIG_MAP = "lambda-node-groups-pools"
CLOUD_CONFIG_MAP = "cluster-autoscaler-cloud-config"
GRPC_TIMEOUT = "10s"
RUN_AS = 65532
CA_VALIDITY_HOURS = 5 * 365 * 24
LEAF_VALIDITY_HOURS = 365 * 24
EARLY_RENEWAL_HOURS = 30 * 24
# Both pods run as the upstream chart runs cluster-autoscaler (values.yaml, chart 9.59.0).
PRIORITY_CLASS = "system-cluster-critical"
# A launch waits for its slot (1 per 12 s) before the boot starts: allowance on top of the boot timeout.
LAUNCH_QUEUE_MINUTES = 5


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """Inputs of `ClusterAutoscaler`."""

    settings: AutoscalerSettings
    """Image, namespace, scan interval, scale-down delay after a scale-up (`sophia:autoscaler`)."""
    pools: Sequence[tuple[GpuPoolSettings, GpuPool]]
    """Each pool's settings and the component that holds its floor, SSH key and rulesets."""
    cluster: str
    """Account prefix (`sophia-prod`): burst instances are named and tagged with it."""
    region: str
    fallback_regions: Sequence[str]
    cluster_join: ClusterJoinSettings
    join_token: pulumi.Input[str]
    """Secret `sophia:clusterJoinToken`: burst instances join the cluster with it."""
    lambda_api_key: pulumi.Input[str]
    """Secret `sophia:lambdaApiKey`: the service launches and terminates with it."""
    cost_tags: Mapping[str, str]
    kubernetes_version: str


def pool_spec(
    pool: GpuPoolSettings, region: str, fallback_regions: Sequence[str], cost_tags: Mapping[str, str]
) -> PoolSpec:
    """A pool as the service serves it; SSH key names and ruleset ids are filled in at deploy time."""
    off = pool.off_hours
    return PoolSpec(
        name=pool.name,
        instance_type=pool.instance_type,
        min=pool.min,
        max=pool.max,
        floor=pool.floor(autoscaled=True),
        region=region,
        fallback_regions=tuple(fallback_regions),
        scale_from_zero=pool.scale_from_zero,
        off_hours=OffHours(off.timezone, off.stop_at, off.start_at, off.weekends_off) if off else None,
        taints=(Taint(POOL_LABEL, pool.name, "NoSchedule"),),
        tags={**cost_tags, "managed-by": "cluster-autoscaler"},
    )


def pools_document(
    cluster: str, specs: Sequence[PoolSpec], join: ClusterJoinSettings, accounts: Mapping[str, dict[str, Any]]
) -> str:
    """The service's `--pools-file`; `accounts` holds each pool's `ssh_key_names` and `firewall_rulesets`."""
    filled = tuple(
        replace(
            spec,
            ssh_key_names=tuple(accounts[spec.name]["ssh_key_names"]),
            firewall_rulesets={r: tuple(ids) for r, ids in accounts[spec.name]["firewall_rulesets"].items()},
        )
        for spec in specs
    )
    return ServiceConfig(cluster, filled, JoinSpec(join.server_url, join.k3s_version)).to_json()


def cloud_config(namespace: str) -> str:
    """cluster-autoscaler's `--cloud-config` for externalgrpc (cloudprovider/externalgrpc/README.md @1.36.1)."""
    return "\n".join(
        [
            f'address: "{SERVICE_NAME}.{namespace}.svc:{SERVICE_PORT}"',
            'key: "/etc/ssl/client-cert/tls.key"',
            'cert: "/etc/ssl/client-cert/tls.crt"',
            'cacert: "/etc/ssl/client-cert/ca.crt"',
            f'grpc_timeout: "{GRPC_TIMEOUT}"',
            "",
        ]
    )


def max_node_provision_minutes(pools: Sequence[GpuPoolSettings]) -> int:
    """The slowest pool's allowance: its launch queue plus the provider's boot timeout for its type."""
    return max(LAUNCH_QUEUE_MINUTES + int(wait_timeout_s(p.instance_type) // 60) for p in pools)


def autoscaler_flags(settings: AutoscalerSettings, pools: Sequence[GpuPoolSettings]) -> list[str]:
    """Flags of cluster-autoscaler; they apply to every pool (the service answers NodeGroupGetOptions with
    UNIMPLEMENTED, so no group overrides them)."""
    return [
        "--cloud-provider=externalgrpc",
        "--cloud-config=/config/cloud-config",
        # Price expander: the service answers both PricingNodePrice and PricingPodPrice (it needs both).
        "--expander=price",
        f"--scan-interval={settings.scan_interval_seconds}s",
        f"--scale-down-delay-after-add={settings.scale_down_delay_after_add_minutes}m",
        f"--scale-down-unneeded-time={settings.scale_down_unneeded_minutes}m",
        f"--max-node-provision-time={max_node_provision_minutes(pools)}m",
        # GPU nodes are only for their pool's pods: count utilisation on GPUs too.
        "--scale-down-gpu-utilization-threshold=0.5",
        "--skip-nodes-with-local-storage=false",
        "--balance-similar-node-groups=false",
        f"--namespace={settings.namespace}",
        "--leader-elect=true",
        "--logtostderr=true",
        "--v=2",
    ]


def _rules() -> list[k8s.rbac.v1.PolicyRuleArgs]:
    """The upstream chart's ClusterRole (cluster-autoscaler-chart-9.59.0), less other providers' rules."""
    read = ["watch", "list", "get"]
    spec: list[tuple[list[str], list[str], list[str], list[str] | None]] = [
        ([""], ["events", "endpoints"], ["create", "patch"], None),
        ([""], ["pods/eviction"], ["create"], None),
        ([""], ["pods/status"], ["update"], None),
        ([""], ["endpoints"], ["get", "update"], [CA_NAME]),
        # As the chart grants them for providers other than kwok and huaweicloud: no create, no delete.
        ([""], ["nodes"], ["watch", "list", "get", "update"], None),
        ([""], ["podtemplates"], ["get", "list", "watch", "create", "update", "patch"], None),
        (["resource.k8s.io"], ["resourceslices", "deviceclasses", "resourceclaims"], read, None),
        (
            [""],
            ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims", "persistentvolumes"],
            read,
            None,
        ),
        (["batch"], ["jobs", "cronjobs"], read, None),
        (["policy"], ["poddisruptionbudgets"], ["watch", "list"], None),
        (["apps"], ["daemonsets", "deployments", "replicasets", "statefulsets"], read, None),
        (
            ["storage.k8s.io"],
            ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"],
            read,
            None,
        ),
        ([""], ["configmaps"], ["list", "watch", "get"], None),
        (["coordination.k8s.io"], ["leases"], ["create"], None),
        (["coordination.k8s.io"], ["leases"], ["get", "update"], [CA_NAME]),
    ]
    return [
        k8s.rbac.v1.PolicyRuleArgs(api_groups=groups, resources=kinds, verbs=verbs, resource_names=names)
        for groups, kinds, verbs, names in spec
    ]


class ClusterAutoscaler(pulumi.ComponentResource):
    """cluster-autoscaler and the node-group service, each with its own least-privilege identity."""

    namespace: str

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:compute:ClusterAutoscaler", name, None, opts)
        settings = args.settings
        ns = self.namespace = settings.namespace
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": f"v{args.kubernetes_version}",
                },
            ),
            opts=child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        def meta(object_name: str, labels: Mapping[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns, labels=dict(labels or {}))

        # -- mTLS: one stack-local CA signs the service's server certificate and the autoscaler's client one.
        ca_key = tls.PrivateKey(f"{name}-ca-key", tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P256"), child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            tls.SelfSignedCertArgs(
                private_key_pem=ca_key.private_key_pem,
                is_ca_certificate=True,
                validity_period_hours=CA_VALIDITY_HOURS,
                allowed_uses=["cert_signing", "crl_signing"],
                subject=tls.SelfSignedCertSubjectArgs(common_name=f"{name} gRPC CA", organization="Sophia AI"),
            ),
            child,
        )
        certificates: dict[str, pulumi.Output[str]] = {}
        for role, secret, dns_names, usage in (
            (
                "server",
                SERVER_TLS_SECRET,
                [f"{SERVICE_NAME}.{ns}.svc", f"{SERVICE_NAME}.{ns}.svc.cluster.local"],
                "server_auth",
            ),
            ("client", CLIENT_TLS_SECRET, ["cluster-autoscaler-grpc-client"], "client_auth"),
        ):
            key = tls.PrivateKey(f"{name}-{role}-key", tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P256"), child)
            request = tls.CertRequest(
                f"{name}-{role}-csr",
                tls.CertRequestArgs(
                    private_key_pem=key.private_key_pem,
                    dns_names=dns_names,
                    subject=tls.CertRequestSubjectArgs(common_name=dns_names[0], organization="Sophia AI"),
                ),
                child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{role}-cert",
                tls.LocallySignedCertArgs(
                    cert_request_pem=request.cert_request_pem,
                    ca_private_key_pem=ca_key.private_key_pem,
                    ca_cert_pem=ca.cert_pem,
                    validity_period_hours=LEAF_VALIDITY_HOURS,
                    early_renewal_hours=EARLY_RENEWAL_HOURS,
                    allowed_uses=["digital_signature", "key_encipherment", usage],
                ),
                child,
            )
            certificates[role] = cert.cert_pem
            private_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem)
            k8s.core.v1.Secret(
                f"{name}-{role}-tls",
                metadata=meta(secret),
                type="kubernetes.io/tls",
                string_data={
                    "tls.crt": cert.cert_pem,
                    "tls.key": private_key,
                    "ca.crt": ca.cert_pem,
                },
                opts=inside,
            )

        # -- the node-group service
        k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=meta(CREDENTIALS_SECRET),
            string_data={
                "lambda-api-key": pulumi.Output.secret(args.lambda_api_key),
                "cluster-join-token": pulumi.Output.secret(args.join_token),
            },
            opts=inside,
        )
        specs = [pool_spec(p, args.region, args.fallback_regions, args.cost_tags) for p, _ in args.pools]
        # Names only, known at preview: the service looks the rulesets' ids up by name when it launches.
        accounts = {
            settings_.name: {
                "ssh_key_names": [pool.account_name],
                "firewall_rulesets": {region: [n] for region, n in pool.ruleset_names.items()},
            }
            for settings_, pool in args.pools
        }
        document = pools_document(args.cluster, specs, args.cluster_join, accounts)
        pools_map = k8s.core.v1.ConfigMap(
            f"{name}-pools", metadata=meta(POOLS_CONFIG_MAP), data={"pools.json": document}, opts=inside
        )
        service_labels = {"app.kubernetes.io/name": SERVICE_NAME, "app.kubernetes.io/part-of": CA_NAME}
        ca_labels = {"app.kubernetes.io/name": CA_NAME, "app.kubernetes.io/part-of": CA_NAME}
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta(SERVICE_NAME, service_labels),
            automount_service_account_token=False,  # only the service's pod mounts it (below)
            opts=inside,
        )
        # The service deletes the Nodes of the instances it terminated (k3s never does): nodes, no more.
        node_role = k8s.rbac.v1.ClusterRole(
            f"{name}-service-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{ns}-{SERVICE_NAME}", labels=service_labels),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=["get", "list", "delete"])],
            opts=child,
        )
        node_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-service-cluster-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{ns}-{SERVICE_NAME}", labels=service_labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"{ns}-{SERVICE_NAME}"
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=SERVICE_NAME, namespace=ns)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_role]),
        )

        # Burst instances are no Pulumi resources: deleting this terminates them (turning the autoscaler
        # off, `pulumi destroy`). The service depends on it, so it is gone before the sweep runs; the
        # sweep depends on the pools' keys and rulesets, so they go after the instances that hold them.
        pool_resources = [r for _, pool in args.pools for r in (pool.ssh_key, *pool.firewalls.values())]
        sweep = LambdaBurstSweep(
            f"{name}-burst-sweep",
            LambdaBurstSweepArgs(owner_tag=OWNER_TAG, owner=args.cluster),
            pulumi.ResourceOptions(parent=self, depends_on=pool_resources),
        )

        def secret_env(env: str, key: str) -> k8s.core.v1.EnvVarArgs:
            return k8s.core.v1.EnvVarArgs(
                name=env,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=CREDENTIALS_SECRET, key=key)
                ),
            )

        k8s.apps.v1.Deployment(
            f"{name}-service",
            metadata=meta(SERVICE_NAME, service_labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # Exactly one writer: two replicas would each launch for the same request. Recreate, so an
                # update never runs two at once; a restart loses nothing (sizes come from the API).
                replicas=1,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=service_labels,
                        # A new pools document or certificate restarts the pod (TLS files are read at start).
                        annotations={
                            "sophia.ai/pools-sha": _digest(document),
                            "sophia.ai/tls-sha": certificates["server"].apply(_digest),
                        },
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=SERVICE_NAME,
                        # Its token: the Kubernetes API, for deleting the Nodes of terminated instances.
                        automount_service_account_token=True,
                        # Scaling stops without it, as without the autoscaler (the upstream chart's default).
                        priority_class_name=PRIORITY_CLASS,
                        security_context=pod_security(RUN_AS),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="node-groups",
                                image=settings.service_image,
                                command=["python", "-m", "autoscaler"],
                                args=[
                                    f"--address=0.0.0.0:{SERVICE_PORT}",
                                    "--pools-file=/etc/lambda-node-groups/pools.json",
                                    "--tls-key=/etc/lambda-node-groups/tls/tls.key",
                                    "--tls-cert=/etc/lambda-node-groups/tls/tls.crt",
                                    "--tls-ca=/etc/lambda-node-groups/tls/ca.crt",
                                ],
                                env=[
                                    secret_env("LAMBDA_API_KEY", "lambda-api-key"),
                                    secret_env("CLUSTER_JOIN_TOKEN", "cluster-join-token"),
                                ],
                                ports=[k8s.core.v1.ContainerPortArgs(name="grpc", container_port=SERVICE_PORT)],
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=SERVICE_PORT), period_seconds=10
                                ),
                                resources=resources("100m", "256Mi", "1"),
                                security_context=container_security(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="pools", mount_path="/etc/lambda-node-groups", read_only=True
                                    ),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="tls", mount_path="/etc/lambda-node-groups/tls", read_only=True
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="pools", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=POOLS_CONFIG_MAP)
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tls",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=SERVER_TLS_SECRET, default_mode=0o400
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            # The pools' keys and rulesets exist before the service can launch with them.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[namespace, pools_map, service_account, node_binding, sweep, *pool_resources],
            ),
        )
        k8s.core.v1.Service(
            f"{name}-service-endpoint",
            metadata=meta(SERVICE_NAME, service_labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=service_labels,
                ports=[k8s.core.v1.ServicePortArgs(name="grpc", port=SERVICE_PORT, target_port=SERVICE_PORT)],
            ),
            opts=inside,
        )

        # -- cluster-autoscaler
        k8s.core.v1.ServiceAccount(f"{name}-ca-account", metadata=meta(CA_NAME, ca_labels), opts=inside)
        k8s.rbac.v1.ClusterRole(
            f"{name}-ca-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{ns}-{CA_NAME}", labels=ca_labels),
            rules=_rules(),
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-ca-cluster-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{ns}-{CA_NAME}", labels=ca_labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"{ns}-{CA_NAME}"
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CA_NAME, namespace=ns)],
            opts=child,
        )
        k8s.rbac.v1.Role(
            f"{name}-ca-role",
            metadata=meta(CA_NAME, ca_labels),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["configmaps"], verbs=["create"]),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["configmaps"],
                    resource_names=["cluster-autoscaler-status"],
                    verbs=["delete", "get", "update"],
                ),
            ],
            opts=inside,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-ca-role-binding",
            metadata=meta(CA_NAME, ca_labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=CA_NAME),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CA_NAME, namespace=ns)],
            opts=inside,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-cloud-config",
            metadata=meta(CLOUD_CONFIG_MAP),
            data={"cloud-config": cloud_config(ns)},
            opts=inside,
        )
        pool_settings = [p for p, _ in args.pools]
        k8s.apps.v1.Deployment(
            f"{name}-autoscaler",
            metadata=meta(CA_NAME, ca_labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ca_labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=ca_labels, annotations={"sophia.ai/tls-sha": certificates["client"].apply(_digest)}
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=CA_NAME,
                        priority_class_name=PRIORITY_CLASS,  # the upstream chart's default
                        security_context=pod_security(RUN_AS),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=CA_NAME,
                                image=CLUSTER_AUTOSCALER_IMAGE,
                                command=["./cluster-autoscaler"],
                                args=autoscaler_flags(settings, pool_settings),
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=8085)],
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/health-check", port=8085)
                                ),
                                resources=resources("100m", "600Mi", "1"),
                                security_context=container_security(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="cloud-config", mount_path="/config", read_only=True
                                    ),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="client-cert", mount_path="/etc/ssl/client-cert", read_only=True
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="cloud-config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=CLOUD_CONFIG_MAP),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="client-cert",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=CLIENT_TLS_SECRET, default_mode=0o400
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=inside,
        )

        # -- network: closed by default; the autoscaler reaches the service and the API server, the service
        # reaches the Lambda API and the API server (HTTPS) and DNS.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            opts=inside,
        )
        grpc_port = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=SERVICE_PORT)]
        # HTTPS: the Lambda API, and the API server through its Service (443) or directly (k3s's 6443).
        https = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (443, 6443)]
        api_server = https
        k8s.networking.v1.NetworkPolicy(
            f"{name}-service-network",
            metadata=meta(SERVICE_NAME, service_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_labels),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ca_labels)
                            )
                        ],
                        ports=grpc_port,
                    )
                ],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=https), dns_egress()],
            ),
            opts=inside,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-autoscaler-network",
            metadata=meta(CA_NAME, ca_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ca_labels),
                policy_types=["Ingress", "Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_labels)
                            )
                        ],
                        ports=grpc_port,
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=api_server),
                    dns_egress(),
                ],
            ),
            opts=inside,
        )
        self.register_outputs({"namespace": ns})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
