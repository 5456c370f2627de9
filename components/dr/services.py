"""`DrServices`: the service fleet as a warm standby on the DR region's EKS cluster, behind an NLB.

The same `sophia:services` as prod (a stack-file test keeps the two lists equal), each backend at
its `dr.standbyReplicas` and scaling the same way. Each of the primary's pools the services name
is an EKS managed node group here (`sophia:fleet.nodeGroups`) whose nodes carry the pool's label
and taint, so every Deployment renders exactly as in prod; GPU groups run the EKS accelerated AMI
and NVIDIA's device plugin. Prometheus (kube-prometheus-stack) runs here too: KEDA's triggers read
it. The gateway's proxies listen on fixed node ports behind an internet-facing Network Load
Balancer, which the failover's secondary record aliases (`components/dr/failover.py`); the gateway's
certificate comes by DNS-01 in the failover's zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.compute.cloud_init import POOL_LABEL
from components.dr.eks import NODE_ROOT_GIB, encrypted_node_template
from components.observability.alert_rules import CostFacts
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.services.acme_dns import AcmeDnsIdentity, AcmeDnsIdentityArgs
from components.services.fleet import ServiceFleet, ServiceFleetArgs
from components.services.gateway import NodePorts, Route53Dns
from settings.observability import MonitoringSettings
from settings.operators import OperatorsSettings
from settings.services import DR_INSTANCE_TYPES, FleetSettings, NodeGroupSettings, ServiceSettings

GATEWAY_NODE_PORTS = NodePorts(http=30080, https=30443)
# NVIDIA's device plugin (NVIDIA/k8s-device-plugin v0.19.3, chart nvidia-device-plugin): advertises
# `nvidia.com/gpu` on the GPU nodes; the EKS accelerated AMI has the driver and container toolkit.
DEVICE_PLUGIN_CHART = "nvidia-device-plugin"
DEVICE_PLUGIN_VERSION = "0.19.3"
DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_NODE_ROOT_GIB = 200
"""GPU nodes' root volume: the NVIDIA AMI's drivers and the AI services' images (a CUDA base alone
is several GiB); models load onto the services' own volumes."""


@dataclass(frozen=True)
class DrFleetInputs:
    """What the DR region needs to run the fleet: the stack's services and fleet settings, monitoring
    settings and the Alertmanager receivers' secrets, the budget."""

    services: Sequence[ServiceSettings]
    fleet: FleetSettings
    monitoring: MonitoringSettings
    pagerduty_routing_key: pulumi.Input[str]
    slack_webhook_url: pulumi.Input[str]
    monthly_budget_usd: Decimal


@dataclass(frozen=True)
class DrServicesArgs:
    """Inputs of `DrServices`."""

    services: Sequence[ServiceSettings]
    fleet: FleetSettings
    monitoring: MonitoringSettings
    pagerduty_routing_key: pulumi.Input[str]
    slack_webhook_url: pulumi.Input[str]
    monthly_budget_usd: Decimal
    region: str
    cluster_name: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group, which every managed node joins."""
    node_role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The DR data key: the node groups' root volumes are encrypted with it."""
    base_node_group: aws.eks.NodeGroup
    """The cluster's general node group: the NLB sends to its nodes' ports (kube-proxy forwards)."""
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    data_namespace: str
    monitoring_namespace: str
    storage_class: str
    tags: Mapping[str, str]
    provider: aws.Provider
    kubernetes_provider: k8s.Provider
    kubernetes_ready: Sequence[pulumi.Resource]
    """What the cluster's objects wait for (the data namespace, cert-manager)."""
    operators: OperatorsSettings = field(default_factory=OperatorsSettings)
    """Install or use the DR cluster's kube-prometheus-stack, KEDA and Envoy Gateway."""


class DrServices(pulumi.ComponentResource):
    """`load_balancer` (its `dns_name` and `zone_id` are the secondary record's alias target)."""

    def __init__(self, name: str, args: DrServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Services", name, None, opts)
        tags = dict(args.tags)
        aws_child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.node_groups = [self._node_group(name, group, args, tags) for group in args.fleet.node_groups]
        kube = pulumi.ResourceOptions(
            parent=self,
            provider=args.kubernetes_provider,
            depends_on=[*args.kubernetes_ready, *self.node_groups],
        )
        device_plugin = k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            k8s.helm.v3.ReleaseArgs(
                name="nvidia-device-plugin",
                chart=DEVICE_PLUGIN_CHART,
                version=DEVICE_PLUGIN_VERSION,
                namespace="kube-system",
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
                values={
                    # Only the GPU groups' nodes (labelled by their node group), through the pools' taints.
                    "affinity": None,
                    "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                    "tolerations": [
                        {"key": POOL_LABEL, "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                },
                atomic=True,
            ),
            opts=kube,
        )
        self.monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                settings=args.monitoring,
                namespace=args.monitoring_namespace,
                storage_class=args.storage_class,
                pagerduty_routing_key=args.pagerduty_routing_key,
                slack_webhook_url=args.slack_webhook_url,
                scrape_targets=[],
                pools=[],
                cost=CostFacts(Decimal(0), args.monthly_budget_usd),
                restore_checked_stores=[],
                protect=True,
                fleet_namespace=args.fleet.namespace,
                install_stack=args.operators.prometheus_stack == "install",
                pusher_namespace=args.data_namespace,
            ),
            kube,
        )
        identity = AcmeDnsIdentity(
            f"{name}-acme-dns",
            AcmeDnsIdentityArgs(args.fleet.gateway.hosted_zone_id, tags, args.provider),
            pulumi.ResourceOptions(parent=self),
        )
        self.fleet = ServiceFleet(
            f"{name}-fleet",
            ServiceFleetArgs(
                services=args.services,
                fleet=args.fleet,
                instance_types={group.pool: group.instance_type for group in args.fleet.node_groups},
                environment="dr",
                thresholds=args.monitoring.thresholds,
                monitoring_namespace=args.monitoring_namespace,
                data_namespace=args.data_namespace,
                prometheus_url=args.fleet.prometheus_url or self.monitoring.prometheus_url,
                storage_class=args.storage_class,
                protect=True,
                install_keda=args.operators.keda == "install",
                install_envoy_gateway=args.operators.envoy_gateway == "install",
                standby=True,
                # The accelerated AMI makes NVIDIA's runtime containerd's default: no RuntimeClass.
                gpu_runtime_class=None,
                dns01=Route53Dns(
                    region=args.region,
                    hosted_zone_id=args.fleet.gateway.hosted_zone_id,
                    credentials=(identity.access_key_id, identity.secret_access_key),
                ),
                node_ports=GATEWAY_NODE_PORTS,
                monitor_labels=args.monitoring.resource_labels,
            ),
            pulumi.ResourceOptions.merge(
                kube, pulumi.ResourceOptions(depends_on=[*self.monitoring.ready, device_plugin])
            ),
        )
        self.load_balancer = self._load_balancer(name, args, tags, aws_child)
        self.register_outputs({"loadBalancer": self.load_balancer.dns_name})

    def _node_group(
        self, name: str, group: NodeGroupSettings, args: DrServicesArgs, tags: dict[str, str]
    ) -> aws.eks.NodeGroup:
        """A managed node group standing in for one pool: its label and taint, min nodes warm, up to max
        for cluster-autoscaler; Pulumi leaves the desired size to the autoscaler once it exists."""
        gpu = DR_INSTANCE_TYPES[group.instance_type].gpus > 0
        labels = {POOL_LABEL: group.pool, **({GPU_PRESENT_LABEL: "true"} if gpu else {})}
        aws_child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        template = encrypted_node_template(
            f"{name}-{group.pool}-nodes",
            f"DR fleet {group.pool} nodes",
            kms_key_arn=args.kms_key_arn,
            root_gib=GPU_NODE_ROOT_GIB if gpu else NODE_ROOT_GIB,
            tags=tags,
            opts=aws_child,
        )
        return aws.eks.NodeGroup(
            f"{name}-{group.pool}-nodes",
            cluster_name=args.cluster_name,
            node_group_name=f"fleet-{group.pool}",
            node_role_arn=args.node_role_arn,
            subnet_ids=list(args.private_subnet_ids),
            instance_types=[group.instance_type],
            ami_type="AL2023_x86_64_NVIDIA" if gpu else "AL2023_x86_64_STANDARD",
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min, desired_size=group.min, max_size=group.max
            ),
            labels=labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=POOL_LABEL, value=group.pool, effect="NO_SCHEDULE")],
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags={**tags, "sophia-pool": group.pool},
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, ignore_changes=["scalingConfig.desiredSize"]
            ),
        )

    def _load_balancer(
        self, name: str, args: DrServicesArgs, tags: dict[str, str], child: pulumi.ResourceOptions
    ) -> aws.lb.LoadBalancer:
        """An internet-facing NLB on the public subnets: 443 to the proxies' HTTPS node port (TLS ends
        at Envoy). It has its own security group; the nodes admit the node port from it only.

        No port 80: an NLB forwards TCP and cannot redirect, so a plain listener would carry HTTP to a
        redirect the policy pack cannot see (`aws-lb-listener-tls` refuses it). The failover's clients
        and its health check use HTTPS; prod's gateway keeps its HTTP redirect."""
        ports = {"https": (443, GATEWAY_NODE_PORTS.https)}
        group = aws.ec2.SecurityGroup(
            f"{name}-lb",
            description="The DR gateway's load balancer: HTTPS from anywhere, to the node port",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{name}-lb"},
            opts=child,
        )
        for role, (port, node_port) in ports.items():
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-lb-{role}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0",
                description=f"{role.upper()} from clients",
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-lb-{role}-nodes",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=node_port,
                to_port=node_port,
                referenced_security_group_id=args.cluster_security_group_id,
                description=f"{role.upper()} to the gateway's node port",
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nodes-{role}",
                security_group_id=args.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=node_port,
                to_port=node_port,
                referenced_security_group_id=group.id,
                description=f"the gateway's {role.upper()} node port, from its load balancer",
                opts=child,
            )
        balancer = aws.lb.LoadBalancer(
            f"{name}-lb",
            load_balancer_type="network",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[group.id],
            enable_cross_zone_load_balancing=True,
            tags=tags,
            opts=child,
        )
        groups = args.base_node_group.resources.apply(
            lambda resources: [g.name for r in resources or [] for g in r.autoscaling_groups or [] if g.name]
        )
        for role, (port, node_port) in ports.items():
            target = aws.lb.TargetGroup(
                f"{name}-{role}",
                port=node_port,
                protocol="TCP",
                target_type="instance",
                vpc_id=args.vpc_id,
                health_check=aws.lb.TargetGroupHealthCheckArgs(protocol="TCP", interval=10, healthy_threshold=2),
                deregistration_delay=30,
                tags=tags,
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-{role}",
                load_balancer_arn=balancer.arn,
                port=port,
                protocol="TCP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target.arn)],
                tags=tags,
                opts=child,
            )
            aws.autoscaling.Attachment(
                f"{name}-{role}-nodes",
                autoscaling_group_name=groups.apply(lambda names: names[0]),
                lb_target_group_arn=target.arn,
                opts=child,
            )
        return balancer
