"""`SophiaPlatform`: the root component every resource of a stack hangs under."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.backup.bucket import QDRANT_PREFIX, BackupBucket, BackupBucketArgs
from components.backup.restore_checks import RestoreChecks, RestoreChecksArgs
from components.compute.autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.compute.cloud_init import node_join_user_data
from components.compute.fleet import GpuFleet, GpuFleetArgs
from components.compute.gpu_pool import GpuPool, GpuPoolArgs
from components.data.failover_guard import FailoverGuard, FailoverGuardArgs
from components.data.namespace import DataNamespace, DataNamespaceArgs
from components.data.placement import StorePlacement
from components.data.postgres_cluster import POSTGRES_PORT, PostgresCluster, PostgresClusterArgs
from components.data.qdrant_cluster import QdrantCluster, QdrantClusterArgs
from components.data.redis_cluster import RedisCluster, RedisClusterArgs
from components.dr.region import DrRegion, DrRegionArgs
from components.dr.replication_dns import ReplicationDns, ReplicationDnsArgs
from components.dr.services import DrFleetInputs
from components.observability.alert_rules import CostFacts, PoolFacts
from components.observability.aws_alarms import AlarmTopic, AlarmTopicArgs
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.services.acme_dns import AcmeDnsIdentity, AcmeDnsIdentityArgs
from components.services.fleet import ServiceFleet, ServiceFleetArgs
from components.services.gateway import Route53Dns
from components.tags import cost_tags
from failover.stack_lease import LeaseView
from policies.catalog import load_lambda_catalog
from settings.backup import BackupSettings
from settings.base import Environment
from settings.compute import IngressRule
from settings.model import StackSettings
from settings.stack import AlertReceivers


@dataclass(frozen=True)
class PlatformArgs:
    """Inputs of `SophiaPlatform`."""

    settings: StackSettings
    """The stack's validated settings."""
    lambda_api_key: pulumi.Output[str] | None = None
    """Secret Lambda API key, where the stack has GPU pools (the node-group service launches with it)."""
    cluster_join_token: pulumi.Output[str] | None = None
    """Secret join token, when `settings.cluster_join` is set."""
    kubeconfig: pulumi.Output[str] | None = None
    """Secret kubeconfig of the primary cluster, when `settings.kubernetes` is set."""
    backup_credentials: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None
    """Secret S3 credentials of the backup writer, when `settings.backups` is set."""
    alert_receivers: AlertReceivers | None = None
    """Alertmanager receivers' secrets, when `settings.monitoring` is set."""
    aws_alarm_pagerduty_url: pulumi.Output[str] | None = None
    """Where AWS alarms notify (a secret), when `settings.has_aws_alarms`."""
    postgres_lease: LeaseView | None = None
    """The lease on the PostgreSQL primary role: read in dr, and in prod once its guard is configured."""


def replication_ingress(settings: StackSettings) -> tuple[IngressRule, ...]:
    """Postgres (5432) from the DR region's NAT addresses only, on every pool's firewall: the
    replication load balancer (k3s ServiceLB) answers on whichever node runs the primary."""
    replication = settings.data_layer.postgres.dr_replication
    if replication is None or not replication.allowed_cidrs:
        return ()
    return (
        IngressRule(
            protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            cidrs=replication.allowed_cidrs,
            description="Postgres replication from the DR region",
        ),
    )


class SophiaPlatform(pulumi.ComponentResource):
    """One environment of the platform; children are named `<name>-<role>`."""

    aws_provider: aws.Provider | None
    """Explicit AWS provider for the DR region (default providers are disabled), or None."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:platform:Platform", name, None, opts)
        settings = args.settings
        self.aws_provider = None
        self._aws_providers: dict[str, aws.Provider] = {}
        """The primary's AWS providers by role (`backups`, `backup-replica`); Route 53 is global."""
        self.replica_region_provider: aws.Provider | None = None
        self.backups_provider: aws.Provider | None = None
        self.backup_bucket: BackupBucket | None = None
        self.postgres: PostgresCluster | None = None
        self.services: ServiceFleet | None = None
        if settings.dr is not None:
            self.aws_provider = aws.Provider(
                f"{name}-aws",
                aws.ProviderArgs(
                    region=settings.dr.aws_region,
                    default_tags=aws.ProviderDefaultTagsArgs(tags=cost_tags(settings)),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.dr_region = (
            DrRegion(
                f"{name}-dr",
                DrRegionArgs(
                    settings.dr,
                    settings.data_layer.postgres,
                    settings.data_layer.redis,
                    settings.data_layer.qdrant,
                    cost_tags(settings),
                    self.aws_provider,
                    args.aws_alarm_pagerduty_url,
                    _required_lease(args.postgres_lease),
                    settings.operators,
                    fleet=self._dr_fleet(args),
                ),
                pulumi.ResourceOptions(parent=self),
            )
            if settings.dr is not None and self.aws_provider is not None and args.aws_alarm_pagerduty_url is not None
            else None
        )
        self.gpu_pools = self._gpu_pools(name, args)
        self.gpu_fleet = (
            GpuFleet(f"{name}-gpu-fleet", GpuFleetArgs(self.gpu_pools), pulumi.ResourceOptions(parent=self))
            if self.gpu_pools
            else None
        )
        self.data_namespace = self._data_layer(name, args)
        self.register_outputs({})

    def _data_layer(self, name: str, args: PlatformArgs) -> DataNamespace | None:
        settings = args.settings
        kubernetes = settings.kubernetes
        if kubernetes is None or args.kubeconfig is None:
            return None
        # Both guaranteed by settings validation wherever kubernetes is set.
        assert settings.backups is not None
        assert args.backup_credentials is not None
        protect = settings.environment is Environment.PROD
        data = DataNamespace(
            f"{name}-data",
            DataNamespaceArgs(
                kubernetes=kubernetes,
                kubeconfig=args.kubeconfig,
                protect=protect,
                backup_credentials=args.backup_credentials,
                install_cert_manager=settings.operators.cert_manager == "install",
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.backup_bucket = self._backup_bucket(name, settings.backups, args, protect)
        placement = StorePlacement.in_cluster(kubernetes, protect)
        stores = pulumi.ResourceOptions(
            parent=data,
            provider=data.provider,
            depends_on=[*data.ready, self.backup_bucket],
        )
        self.redis = RedisCluster(
            "redis", RedisClusterArgs(redis=settings.data_layer.redis, placement=placement), stores
        )
        dr_replication = settings.data_layer.postgres.dr_replication
        rebuilding = dr_replication is not None and dr_replication.rebuild_from_dr
        postgres = self.postgres = PostgresCluster(
            "postgres",
            PostgresClusterArgs(
                postgres=settings.data_layer.postgres,
                backups=settings.backups,
                backup_secret_name=data.backup_secret_name,
                placement=placement,
                # Rebuilt from DR for failback, it is a replica: nothing to fence.
                fenced=args.postgres_lease is not None and args.postgres_lease.dr_holds and not rebuilding,
                rebuild_from_dr=rebuilding,
                install_operator=settings.operators.cloudnative_pg == "install",
            ),
            stores,
        )
        replication = settings.data_layer.postgres.dr_replication
        if replication is not None and postgres.replication_service is not None:
            ReplicationDns(
                f"{name}-replication-dns",
                ReplicationDnsArgs(
                    replication.hostname,
                    replication.hosted_zone_id,
                    postgres.replication_service,
                    self._aws_providers["backups"],
                    cost_tags(settings),
                ),
                pulumi.ResourceOptions(parent=self),
            )
        elif replication is not None:
            pulumi.log.warn(
                "sophia:dataLayer.postgres.drReplication.allowedCidrs is empty: the replication endpoint "
                "stays closed until it lists the dr stack's drNatPublicIps (/32 each); see docs/dr.md, Bring-up"
            )
        self.failover_guard = self._failover_guard(args, placement, stores)
        self.qdrant = [
            QdrantCluster(
                f"qdrant-{index}",
                QdrantClusterArgs(
                    qdrant=settings.data_layer.qdrant,
                    backups=settings.backups,
                    backup_secret_name=data.backup_secret_name,
                    placement=placement,
                    snapshot_prefix=QDRANT_PREFIX,
                ),
                stores,
            )
            for index in range(settings.data_layer.qdrant.clusters)
        ]
        self.cluster_autoscaler = self._cluster_autoscaler(name, args, data)
        checked = [postgres.backup_source.store, self.redis.backup_source.store]
        checked += [q.backup_source.store for q in self.qdrant]
        self.monitoring = self._monitoring(name, args, data, checked)
        assert settings.monitoring is not None  # _monitoring checked it
        self.restore_checks = RestoreChecks(
            f"{name}-restore-checks",
            RestoreChecksArgs(
                verification=settings.monitoring.restore_verification,
                backups=settings.backups,
                backup_secret_name=data.backup_secret_name,
                placement=placement,
                pushgateway_url=self.monitoring.pushgateway_url,
                push_password=self.monitoring.push_password,
                postgres=postgres.backup_source,
                redis=self.redis.backup_source,
                qdrant=[q.backup_source for q in self.qdrant],
                scratch_storage=kubernetes.scratch_storage,
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=data.ready),
        )
        self.services = self._services(name, args, data)
        return data

    @staticmethod
    def _dr_fleet(args: PlatformArgs) -> DrFleetInputs | None:
        """The service fleet's warm standby in the DR region, when the dr stack lists services."""
        settings = args.settings
        if not settings.services:
            return None
        # Guaranteed by settings validation wherever the dr stack lists services.
        assert settings.fleet is not None
        assert settings.monitoring is not None
        assert args.alert_receivers is not None
        return DrFleetInputs(
            services=settings.services,
            fleet=settings.fleet,
            monitoring=settings.monitoring,
            pagerduty_routing_key=args.alert_receivers.pagerduty_routing_key,
            slack_webhook_url=args.alert_receivers.slack_webhook_url,
            monthly_budget_usd=settings.monthly_budget_usd,
        )

    def _services(self, name: str, args: PlatformArgs, data: DataNamespace) -> ServiceFleet | None:
        """The service fleet on the primary cluster, when `sophia:services` lists any."""
        settings = args.settings
        if not settings.services:
            return None
        # Guaranteed by settings validation wherever there are services on the primary cluster.
        assert settings.fleet is not None
        assert settings.kubernetes is not None
        assert settings.monitoring is not None
        assert self.backups_provider is not None  # kubernetes needs backups, which made it
        zone = settings.fleet.gateway.hosted_zone_id
        identity = AcmeDnsIdentity(
            f"{name}-acme-dns",
            AcmeDnsIdentityArgs(zone, cost_tags(settings), self.backups_provider),
            pulumi.ResourceOptions(parent=self),
        )
        dns01 = Route53Dns(
            # Route 53 is global; cert-manager's client needs some region.
            region=settings.backups.s3_region if settings.backups else "us-east-1",
            hosted_zone_id=zone,
            credentials=(identity.access_key_id, identity.secret_access_key),
        )
        return ServiceFleet(
            f"{name}-services",
            ServiceFleetArgs(
                services=settings.services,
                fleet=settings.fleet,
                instance_types={pool.name: pool.instance_type for pool in settings.gpu_pools},
                environment=settings.environment.value,
                thresholds=settings.monitoring.thresholds,
                monitoring_namespace=settings.kubernetes.monitoring_namespace,
                data_namespace=settings.kubernetes.data_namespace,
                prometheus_url=settings.fleet.prometheus_url or self.monitoring.prometheus_url,
                storage_class=settings.kubernetes.storage_class,
                protect=settings.environment is Environment.PROD,
                dns01=dns01,
                install_keda=settings.operators.keda == "install",
                install_envoy_gateway=settings.operators.envoy_gateway == "install",
                monitor_labels=settings.monitoring.resource_labels,
            ),
            pulumi.ResourceOptions(
                parent=self, provider=data.provider, depends_on=[*data.ready, *self.monitoring.ready]
            ),
        )

    def _failover_guard(
        self, args: PlatformArgs, placement: StorePlacement, stores: pulumi.ResourceOptions
    ) -> FailoverGuard | None:
        settings = args.settings
        replication = settings.data_layer.postgres.dr_replication
        if replication is None or replication.failover_lease_table is None:
            return None
        # Guaranteed by settings validation when failoverLeaseTable is set.
        assert settings.backups is not None
        assert settings.backups.replica_region is not None
        assert self.replica_region_provider is not None
        return FailoverGuard(
            "postgres-failover-guard",
            FailoverGuardArgs(
                lease_table=replication.failover_lease_table,
                lease_region=settings.backups.replica_region,
                cnpg_cluster="postgres",
                placement=placement,
                cluster_is_replica=replication.rebuild_from_dr,
                # The lease lives in the DR region, where the backups are copied.
                aws_provider=self.replica_region_provider,
            ),
            pulumi.ResourceOptions.merge(
                stores, pulumi.ResourceOptions(depends_on=[self.postgres.cluster] if self.postgres else [])
            ),
        )

    def _cluster_autoscaler(self, name: str, args: PlatformArgs, data: DataNamespace) -> ClusterAutoscaler | None:
        settings = args.settings
        if settings.autoscaler is None or not self.gpu_pools:
            return None
        # All guaranteed by settings validation wherever autoscaler is set.
        assert settings.cluster_join is not None
        assert settings.kubernetes is not None
        assert settings.lambda_region is not None
        assert args.cluster_join_token is not None
        assert args.lambda_api_key is not None
        return ClusterAutoscaler(
            f"{name}-autoscaler",
            ClusterAutoscalerArgs(
                settings=settings.autoscaler,
                pools=list(zip(settings.gpu_pools, self.gpu_pools, strict=True)),
                cluster=name,
                region=settings.lambda_region,
                fallback_regions=settings.lambda_fallback_regions,
                cluster_join=settings.cluster_join,
                join_token=args.cluster_join_token,
                lambda_api_key=args.lambda_api_key,
                cost_tags=cost_tags(settings),
                kubernetes_version=settings.kubernetes.version,
            ),
            pulumi.ResourceOptions(parent=self, provider=data.provider),
        )

    def _backup_bucket(self, name: str, backups: BackupSettings, args: PlatformArgs, protect: bool) -> BackupBucket:
        settings = args.settings

        def provider(role: str, region: str) -> aws.Provider:
            self._aws_providers[role] = aws.Provider(
                f"{name}-aws-{role}",
                aws.ProviderArgs(region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=cost_tags(settings))),
                opts=pulumi.ResourceOptions(parent=self),
            )
            return self._aws_providers[role]

        replica = provider("backup-replica", backups.replica_region) if backups.replica_region else None
        self.replica_region_provider = replica
        # The stack's AWS account (IAM and Route 53 are global): the fleet's DNS-01 identity lives here too.
        source = self.backups_provider = provider("backups", backups.s3_region)
        alarm_topics: tuple[pulumi.Output[str], ...] = ()
        if replica is not None and args.aws_alarm_pagerduty_url is not None:
            # Replication alarms in both regions (BackupBucket explains why): a topic in each.
            account = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=source)).account_id
            alarm_topics = tuple(
                AlarmTopic(
                    f"{name}-alarms-{role}",
                    AlarmTopicArgs(account, region_provider, args.aws_alarm_pagerduty_url, cost_tags(settings)),
                    pulumi.ResourceOptions(parent=self),
                ).topic_arn
                for role, region_provider in (("backups", source), ("backup-replica", replica))
            )
        return BackupBucket(
            f"{name}-backups",
            BackupBucketArgs(
                backups=backups,
                tags=cost_tags(settings),
                provider=source,
                replica_provider=replica,
                protect=protect,
                alarm_topic_arns=alarm_topics,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _monitoring(
        self, name: str, args: PlatformArgs, data: DataNamespace, restore_checked_stores: list[str]
    ) -> Monitoring:
        settings = args.settings
        # Guaranteed by settings validation wherever kubernetes is set.
        assert settings.kubernetes is not None
        assert settings.monitoring is not None
        assert args.alert_receivers is not None
        catalog = load_lambda_catalog()
        return Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                settings=settings.monitoring,
                namespace=settings.kubernetes.monitoring_namespace,
                storage_class=settings.kubernetes.storage_class,
                pagerduty_routing_key=args.alert_receivers.pagerduty_routing_key,
                slack_webhook_url=args.alert_receivers.slack_webhook_url,
                scrape_targets=[self.redis.scrape_target, *(q.scrape_target for q in self.qdrant)],
                pools=[
                    PoolFacts(p.name, catalog.instance_type(p.instance_type).price_usd_per_hour, p.max)
                    for p in settings.gpu_pools
                ],
                cost=CostFacts(settings.hourly_gpu_cost_usd, settings.monthly_budget_usd),
                restore_checked_stores=restore_checked_stores,
                dr_replication=settings.data_layer.postgres.dr_replication,
                data_namespace=settings.kubernetes.data_namespace,
                protect=settings.environment is Environment.PROD,
                install_stack=settings.operators.prometheus_stack == "install",
                pusher_namespace=settings.kubernetes.data_namespace,
                fleet_namespace=settings.fleet.namespace if settings.services and settings.fleet else None,
            ),
            pulumi.ResourceOptions(parent=self, provider=data.provider),
        )

    def _gpu_pools(self, name: str, args: PlatformArgs) -> list[GpuPool]:
        settings = args.settings
        if not settings.gpu_pools:
            return []
        # Both are guaranteed by settings validation whenever there are pools.
        assert settings.lambda_region is not None
        assert settings.lambda_access is not None
        pools = []
        for pool in settings.gpu_pools:
            user_data = None
            if settings.cluster_join is not None and args.cluster_join_token is not None:
                join = settings.cluster_join
                user_data = node_join_user_data(
                    pool.name, pool.instance_type, join.server_url, join.k3s_version, args.cluster_join_token
                )
            pools.append(
                GpuPool(
                    pool.name,
                    GpuPoolArgs(
                        pool=pool,
                        account_prefix=name,
                        region=settings.lambda_region,
                        fallback_regions=settings.lambda_fallback_regions,
                        ssh_public_key=settings.lambda_access.ssh_public_key,
                        ssh_allowed_cidrs=settings.lambda_access.ssh_allowed_cidrs,
                        ingress=(*settings.lambda_access.ingress, *replication_ingress(settings)),
                        tags=cost_tags(settings),
                        user_data=user_data,
                        autoscaled=settings.autoscaler is not None,
                        protect=settings.environment is Environment.PROD,
                    ),
                    pulumi.ResourceOptions(parent=self),
                )
            )
        return pools


def _required_lease(lease: LeaseView | None) -> LeaseView:
    if lease is None:
        raise ValueError("the dr stack needs the lease on the PostgreSQL primary role (read by __main__.py)")
    return lease
