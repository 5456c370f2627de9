"""`DrRegion`: the disaster-recovery site on AWS. It reads what it protects from the prod stack
through a StackReference, and builds the audit trail, the network, the cache and the Route 53
failover in `sophia:dr.awsRegion`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.data.namespace import DataNamespace, DataNamespaceArgs
from components.data.placement import StorePlacement
from components.dr.audit_trail import AuditTrail, AuditTrailArgs
from components.dr.cache import DrCache, DrCacheArgs
from components.dr.eks import DrKubernetes, DrKubernetesArgs
from components.dr.failover import DrFailover, DrFailoverArgs
from components.dr.network import DrNetwork, DrNetworkArgs
from components.dr.postgres_replica import PostgresReplica, PostgresReplicaArgs, PrimaryEndpoint
from components.dr.promoter import DrPromoter, DrPromoterArgs
from components.dr.qdrant_mirror import DrQdrant, DrQdrantArgs
from components.dr.services import DrFleetInputs, DrServices, DrServicesArgs
from failover.stack_lease import LeaseView
from settings.backup import BackupSettings
from settings.data import KubernetesSettings, PostgresSettings, QdrantSettings
from settings.dr import DrSettings
from settings.operators import OperatorsSettings


@dataclass(frozen=True)
class DrRegionArgs:
    """Inputs of `DrRegion`."""

    dr: DrSettings
    """`sophia:dr`."""
    postgres: PostgresSettings
    """Instances and volume size of the DR replica (`sophia:dataLayer.postgres`)."""
    qdrant: QdrantSettings
    """The DR Qdrant clusters (`sophia:dataLayer.qdrant`, mirroring prod's)."""
    tags: Mapping[str, str]
    provider: aws.Provider
    """The explicit provider for `dr.awsRegion`."""
    lease: LeaseView
    """The lease on the PostgreSQL primary role, read before anything is registered."""
    operators: OperatorsSettings = field(default_factory=OperatorsSettings)
    """Install or use the DR cluster's operators (`sophia:operators`)."""
    fleet: DrFleetInputs | None = None
    """The service fleet's warm standby, when the stack lists services."""


DR_KUBERNETES = KubernetesSettings(
    version="1.31",
    storage_class="encrypted-retain",
    data_namespace="sophia-data",
    client_namespaces=("sophia-apps",),
    monitoring_namespace="monitoring",
)


class DrRegion(pulumi.ComponentResource):
    """`backup_replica_bucket` (from prod), `cache_endpoint`, `worst_case_failover_seconds`."""

    def __init__(self, name: str, args: DrRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Region", name, None, opts)
        dr, tags, provider = args.dr, dict(args.tags), args.provider
        primary = pulumi.StackReference(
            f"{name}-primary", stack_name=dr.primary_stack, opts=pulumi.ResourceOptions(parent=self)
        )
        # The bucket name is needed as text (Qdrant's config, IAM ARNs): it is a setting, and the
        # deployment stops here if prod exports a different one.
        self.backup_replica_bucket = primary.require_output("backupReplicaBucket").apply(
            lambda exported: _same_bucket(exported, dr.backup_replica_bucket)
        )
        audit = AuditTrail(
            f"{name}-audit",
            AuditTrailArgs(dr.audit_bucket, tags, provider, dr.audit_retention_days),
            pulumi.ResourceOptions(parent=self),
        )
        # Encrypts the DR stores (ElastiCache at rest, EKS secrets and volumes).
        self.data_key = aws.kms.Key(
            f"{name}-data-key",
            description="Encrypts the DR region's data stores",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True),
        )
        self.network = DrNetwork(
            f"{name}-network",
            DrNetworkArgs(dr, tags, provider, audit.flow_log_destination),
            pulumi.ResourceOptions(parent=self),
        )
        self.cache = DrCache(
            f"{name}-cache",
            DrCacheArgs(
                dr.elasticache,
                self.network.private_subnet_ids,
                self.network.data_security_group.id,
                self.data_key.arn,
                tags,
                provider,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.kubernetes = DrKubernetes(
            f"{name}-eks",
            DrKubernetesArgs(
                dr.eks,
                dr.aws_region,
                self.network.private_subnet_ids,
                self.data_key.arn,
                tags,
                provider,
                dr.backup_replica_bucket,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        data = self._data_namespace(name, args)
        self.postgres = self._postgres(args, primary, data)
        self.services = self._services(name, args, data)
        balancer = self.services.load_balancer if self.services is not None else None
        self.failover = DrFailover(
            f"{name}-failover",
            DrFailoverArgs(
                dr.failover,
                tags,
                provider,
                secondary_target=(balancer.dns_name, balancer.zone_id) if balancer is not None else None,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.promoter = DrPromoter(
            f"{name}-failover",
            DrPromoterArgs(
                lease_table=dr.failover.lease_table,
                region=dr.aws_region,
                eks_cluster_name=self.kubernetes.cluster_name,
                primary_health_check_id=self.failover.primary_health_check_id,
                eks_cluster=self.kubernetes.cluster,
                subnet_ids=self.network.private_subnet_ids,
                vpc_id=self.network.vpc.id,
                cnpg_namespace=DR_KUBERNETES.data_namespace,
                cnpg_cluster=self.postgres.cluster_name,
                tags=tags,
                provider=provider,
                kubernetes_provider=data.provider,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[self.postgres]),
        )
        # prod's guard must renew this table; until it does, the promoter never promotes.
        self.lease_table = pulumi.Output.all(
            self.promoter.lease_table, primary.get_output("postgresFailoverLeaseTable")
        ).apply(lambda tables: _same_lease_table(tables[0], tables[1], dr))
        self.register_outputs(
            {
                "cacheEndpoint": self.cache.endpoint,
                "backupReplicaBucket": self.backup_replica_bucket,
                "worstCaseFailoverSeconds": self.failover.worst_case_failover_seconds,
                "failoverLeaseTable": self.lease_table,
            }
        )

    def _services(self, name: str, args: DrRegionArgs, data: DataNamespace) -> DrServices | None:
        fleet = args.fleet
        if fleet is None:
            return None
        dr = args.dr
        return DrServices(
            f"{name}-services",
            DrServicesArgs(
                services=fleet.services,
                fleet=fleet.fleet,
                monitoring=fleet.monitoring,
                pagerduty_routing_key=fleet.pagerduty_routing_key,
                slack_webhook_url=fleet.slack_webhook_url,
                monthly_budget_usd=fleet.monthly_budget_usd,
                region=dr.aws_region,
                cluster_name=self.kubernetes.cluster.name,
                cluster_security_group_id=self.kubernetes.cluster.vpc_config.cluster_security_group_id,
                node_role_arn=self.kubernetes.node_role.arn,
                base_node_group=self.kubernetes.nodes,
                vpc_id=self.network.vpc.id,
                private_subnet_ids=self.network.private_subnet_ids,
                public_subnet_ids=self.network.public_subnet_ids,
                data_namespace=DR_KUBERNETES.data_namespace,
                monitoring_namespace=DR_KUBERNETES.monitoring_namespace,
                storage_class=DR_KUBERNETES.storage_class,
                tags=args.tags,
                provider=args.provider,
                kubernetes_provider=data.provider,
                kubernetes_ready=data.ready,
                operators=args.operators,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _data_namespace(self, name: str, args: DrRegionArgs) -> DataNamespace:
        dr = args.dr
        namespace_settings = DR_KUBERNETES.model_copy(update={"version": dr.eks.version})
        data = DataNamespace(
            f"{name}-data",
            DataNamespaceArgs(
                kubernetes=namespace_settings,
                kubeconfig=self.kubernetes.kubeconfig,
                protect=True,
                backup_credentials=None,  # DR pods reach S3 through the nodes' IAM role
                install_cert_manager=args.operators.cert_manager == "install",
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[self.kubernetes.nodes]),
        )
        k8s.storage.v1.StorageClass(
            f"{name}-storage",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace_settings.storage_class),
            provisioner="ebs.csi.aws.com",
            reclaim_policy="Retain",  # volumes outlive their claims
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            parameters={"type": "gp3", "encrypted": "true"},
            opts=pulumi.ResourceOptions(parent=data, provider=data.provider),
        )
        return data

    def _postgres(self, args: DrRegionArgs, primary: pulumi.StackReference, data: DataNamespace) -> PostgresReplica:
        dr = args.dr
        namespace_settings = DR_KUBERNETES.model_copy(update={"version": dr.eks.version})
        placement = StorePlacement.in_cluster(namespace_settings, protect=True)
        DrQdrant(
            "qdrant",
            DrQdrantArgs(
                qdrant=args.qdrant,
                replica_bucket=BackupSettings(s3_bucket=dr.backup_replica_bucket, s3_region=dr.aws_region),
                placement=placement,
                schedule=dr.qdrant_restore_schedule,
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=data.ready),
        )
        return PostgresReplica(
            "postgres",
            PostgresReplicaArgs(
                postgres=args.postgres,
                primary=PrimaryEndpoint(
                    hostname=primary.require_output("postgresReplicationHost"),
                    server_ca_pem=primary.require_output("postgresReplicationServerCa"),
                    client_cert_pem=primary.require_output("postgresReplicationCert"),
                    client_key_pem=primary.require_output("postgresReplicationKey"),
                ),
                placement=placement,
                # The lease decides: once DR holds it, every `pulumi up` keeps this database the primary.
                promote=args.lease.dr_holds,
                install_operator=args.operators.cloudnative_pg == "install",
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=data.ready),
        )


def _same_lease_table(table: str, exported: str | None, dr: DrSettings) -> str:
    if exported is None:
        pulumi.log.warn(
            "prod runs no failover guard yet (its sophia:dataLayer.postgres.drReplication.failoverLeaseTable is "
            f"unset): the DR promoter will not promote until prod's guard renews {dr.failover.lease_table}"
        )
    elif exported != dr.failover.lease_table:
        raise ValueError(
            f"sophia:dr.failover.leaseTable is {dr.failover.lease_table!r} but prod's guard renews {exported!r}"
        )
    return table


def _same_bucket(exported: str, configured: str) -> str:
    if exported != configured:
        raise ValueError(
            f"sophia:dr.backupReplicaBucket is {configured!r} but the prod stack replicates to {exported!r}"
        )
    return exported
