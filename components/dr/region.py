"""`DrRegion`: the disaster-recovery site on AWS. It reads what it protects from the prod stack
through a StackReference, and builds the audit trail, the network, the cache and the Route 53
failover in `sophia:dr.awsRegion`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.backup.bucket import POSTGRES_FIGURES_PREFIX, POSTGRES_PREFIX, QDRANT_PREFIX, REDIS_PREFIX
from components.data.namespace import DataNamespace, DataNamespaceArgs
from components.data.placement import StorePlacement
from components.dr.audit_trail import AuditTrail, AuditTrailArgs
from components.dr.cache import DrCache, DrCacheArgs
from components.dr.data_key import DataKeyArgs, data_key, data_key_alias
from components.dr.eks import DrKubernetes, DrKubernetesArgs, replica_bucket_policy
from components.dr.failover import DrFailover, DrFailoverArgs
from components.dr.network import DrNetwork, DrNetworkArgs
from components.dr.postgres_replica import (
    OWN_ARCHIVE_PREFIX,
    PostgresReplica,
    PostgresReplicaArgs,
    PrimaryEndpoint,
    WalArchive,
)
from components.dr.promoter import DrPromoter, DrPromoterArgs
from components.dr.qdrant_mirror import SNAPSHOT_PREFIX as QDRANT_SNAPSHOT_PREFIX
from components.dr.qdrant_mirror import DrQdrant, DrQdrantArgs
from components.dr.restore_checks import CheckedStore, DrRestoreChecks, DrRestoreChecksArgs, put_metrics_statement
from components.dr.services import DrFleetInputs, DrServices, DrServicesArgs
from components.observability.aws_alarms import AlarmTopic, AlarmTopicArgs
from failover.stack_lease import LeaseView
from settings.backup import BackupSettings
from settings.data import KubernetesSettings, PostgresSettings, QdrantSettings, RedisSettings
from settings.dr import DrSettings
from settings.operators import OperatorsSettings


@dataclass(frozen=True)
class DrRegionArgs:
    """Inputs of `DrRegion`."""

    dr: DrSettings
    """`sophia:dr`."""
    postgres: PostgresSettings
    """Instances and volume size of the DR replica (`sophia:dataLayer.postgres`)."""
    redis: RedisSettings
    """Volume size of the primary's Redis nodes (`sophia:dataLayer.redis`): the restore checks' scratch."""
    qdrant: QdrantSettings
    """The DR Qdrant clusters (`sophia:dataLayer.qdrant`, mirroring prod's)."""
    tags: Mapping[str, str]
    provider: aws.Provider
    """The explicit provider for `dr.awsRegion`."""
    alarm_pagerduty_url: pulumi.Input[str]
    """`sophia:awsAlarmPagerdutyUrl` (a secret): where the region's alarms page."""
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
# The restore checks' scratch volumes: made for a job's pod and deleted with it (no run keeps storage).
SCRATCH_STORAGE_CLASS = "encrypted-scratch"


# The primary's backups in the replica bucket (read-only here); DR writes only under dr/ (its Qdrant
# snapshots, its Postgres archive), each store its own prefix.
PRIMARY_BACKUP_PREFIXES = (POSTGRES_PREFIX, POSTGRES_FIGURES_PREFIX, REDIS_PREFIX, QDRANT_PREFIX)
QDRANT_DR_PREFIX = f"{QDRANT_SNAPSHOT_PREFIX}/"
BACKUP_READER_SERVICE_ACCOUNT = "dr-backup-reader"
# The Postgres Cluster's name, in both regions: prod's barman server name, and here the replica's
# ServiceAccount (CloudNativePG names it after the Cluster).
PRIMARY_POSTGRES = "postgres"
PRIMARY_REDIS = "redis"
QDRANT_SERVICE_ACCOUNT = "qdrant"


class DrRegion(pulumi.ComponentResource):
    """`backup_replica_bucket` (from prod), `cache_endpoint`, `worst_case_failover_seconds`."""

    def __init__(self, name: str, args: DrRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Region", name, None, opts)
        self._args = args
        dr, tags, provider = args.dr, dict(args.tags), args.provider
        primary = pulumi.StackReference(
            f"{name}-primary", stack_name=dr.primary_stack, opts=pulumi.ResourceOptions(parent=self)
        )
        # The bucket name is needed as text (Qdrant's config, IAM ARNs): it is a setting, and the
        # deployment stops here if prod exports a different one.
        self.backup_replica_bucket = pulumi.Output.all(
            primary.require_output("backupReplicaBucket"), primary.require_output("backupReplicaRegion")
        ).apply(lambda exported: _same_copy(exported[0], exported[1], dr))
        audit = AuditTrail(
            f"{name}-audit",
            AuditTrailArgs(dr.audit_bucket, tags, provider, dr.audit_retention_days),
            pulumi.ResourceOptions(parent=self),
        )
        # The account id comes with the credentials: an invoke, not a setting.
        account = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider)).account_id
        # Encrypts the DR stores (ElastiCache at rest, EKS secrets, node and Kubernetes volumes).
        self.data_key, key_alias = data_key(self, DataKeyArgs(name, account, tags, provider))
        self.alarms = AlarmTopic(
            f"{name}-alarms",
            AlarmTopicArgs(account, provider, args.alarm_pagerduty_url, tags),
            pulumi.ResourceOptions(parent=self),
        )
        self.network = DrNetwork(
            f"{name}-network",
            DrNetworkArgs(dr, tags, provider, audit.flow_log_destination, audit.bucket_policy),
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
                account,
                self.network.private_subnet_ids,
                self.data_key.arn,
                data_key_alias(name),
                tags,
                provider,
            ),
            # IAM names the key by its alias: the alias first.
            pulumi.ResourceOptions(parent=self, depends_on=[key_alias]),
        )
        data, ready = self._data_namespace(name, args)
        self.postgres = self._postgres(name, args, primary, data, ready)
        self.services = self._services(name, args, data, ready)
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

    def _services(
        self, name: str, args: DrRegionArgs, data: DataNamespace, ready: list[pulumi.Resource]
    ) -> DrServices | None:
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
                kms_key_arn=self.data_key.arn,
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
                kubernetes_ready=ready,
                operators=args.operators,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _data_namespace(self, name: str, args: DrRegionArgs) -> tuple[DataNamespace, list[pulumi.Resource]]:
        """The data namespace, its StorageClass and service accounts; and what workloads wait for."""
        namespace_settings = DR_KUBERNETES.model_copy(update={"version": args.dr.eks.version})
        data = DataNamespace(
            f"{name}-data",
            DataNamespaceArgs(
                kubernetes=namespace_settings,
                kubeconfig=self.kubernetes.kubeconfig,
                protect=True,
                backup_credentials=None,  # DR pods reach S3 through Pod Identity roles
                install_cert_manager=args.operators.cert_manager == "install",
            ),
            pulumi.ResourceOptions(parent=self, depends_on=self.kubernetes.ready),
        )
        storage = k8s.storage.v1.StorageClass(
            f"{name}-storage",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace_settings.storage_class),
            provisioner="ebs.csi.aws.com",
            reclaim_policy="Retain",  # volumes outlive their claims
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            # The data key, named here: the account's default EBS key is not ours to change.
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": self.data_key.arn},
            opts=pulumi.ResourceOptions(parent=data, provider=data.provider),
        )
        scratch = k8s.storage.v1.StorageClass(
            f"{name}-scratch-storage",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SCRATCH_STORAGE_CLASS),
            provisioner="ebs.csi.aws.com",
            reclaim_policy="Delete",  # a job's scratch volume goes with its pod
            volume_binding_mode="WaitForFirstConsumer",
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": self.data_key.arn},
            opts=pulumi.ResourceOptions(parent=data, provider=data.provider),
        )
        accounts = self._pod_identities(name, data, namespace_settings.data_namespace)
        # Stores claim volumes of the first class, restore jobs of the second; all run as their
        # service accounts.
        return data, [*data.ready, storage, scratch, *accounts]

    def _postgres(
        self,
        name: str,
        args: DrRegionArgs,
        primary: pulumi.StackReference,
        data: DataNamespace,
        ready: list[pulumi.Resource],
    ) -> PostgresReplica:
        dr = args.dr
        # prod's barman server name: a prod rebuilt from DR archives under a new one (older prod
        # stacks do not export it: theirs is the Cluster's name).
        archive_server_name = primary.get_output("postgresArchiveServerName").apply(
            lambda exported: str(exported) if exported else PRIMARY_POSTGRES
        )
        namespace_settings = DR_KUBERNETES.model_copy(update={"version": dr.eks.version})
        placement = StorePlacement.in_cluster(namespace_settings, protect=True)
        DrQdrant(
            "qdrant",
            DrQdrantArgs(
                qdrant=args.qdrant,
                replica_bucket=BackupSettings(s3_bucket=dr.backup_replica_bucket, s3_region=dr.aws_region),
                placement=placement,
                schedule=dr.qdrant_restore_schedule,
                service_account=QDRANT_SERVICE_ACCOUNT,
                jobs_service_account=BACKUP_READER_SERVICE_ACCOUNT,
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=ready),
        )
        DrRestoreChecks(
            f"{name}-restore-checks",
            DrRestoreChecksArgs(
                settings=dr.restore_checks,
                bucket=dr.backup_replica_bucket,
                region=dr.aws_region,
                namespace=namespace_settings.data_namespace,
                scratch_storage_class=SCRATCH_STORAGE_CLASS,
                service_account=BACKUP_READER_SERVICE_ACCOUNT,
                stores=primary_stores(args, archive_server_name),
                alarm_topic_arn=self.alarms.topic_arn,
                aws_provider=args.provider,
                tags=args.tags,
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=ready),
        )
        return PostgresReplica(
            PRIMARY_POSTGRES,
            PostgresReplicaArgs(
                postgres=args.postgres,
                primary=PrimaryEndpoint(
                    hostname=self._admitted_host(primary),
                    server_ca_pem=primary.require_output("postgresReplicationServerCa"),
                    client_cert_pem=primary.require_output("postgresReplicationCert"),
                    client_key_pem=primary.require_output("postgresReplicationKey"),
                ),
                placement=placement,
                # The lease decides: once DR holds it, every `pulumi up` keeps this database the primary.
                promote=args.lease.dr_holds,
                install_operator=args.operators.cloudnative_pg == "install",
                archive=WalArchive(
                    dr.backup_replica_bucket, dr.aws_region, POSTGRES_PREFIX.rstrip("/"), archive_server_name
                ),
            ),
            pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=ready),
        )

    def _admitted_host(self, primary: pulumi.StackReference) -> pulumi.Output[str]:
        """The primary's replication host, once prod admits every NAT address of this region: the
        addresses exist only after this stack's first `pulumi up`, so bring-up is prod -> dr ->
        prod -> dr, and the replica is not created to fail its bootstrap until then."""
        return pulumi.Output.all(
            primary.require_output("postgresReplicationHost"),
            primary.require_output("postgresReplicationAllowedCidrs"),
            *self.network.nat_public_ips,
        ).apply(lambda values: admitted_host(values[0], values[1], values[2:]))

    def _pod_identities(self, name: str, data: DataNamespace, namespace: str) -> list[pulumi.Resource]:
        """Service accounts of the DR data pods and the one AWS role each gets (Pod Identity): the
        restore jobs read the primary's backups, Qdrant writes its own snapshots under `dr/` only.
        Returns what the pods must wait for: the accounts and their associations."""
        bucket = self._args.dr.backup_replica_bucket
        accounts: list[pulumi.Resource] = [
            k8s.core.v1.ServiceAccount(
                f"{name}-{account}-account",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=account, namespace=namespace),
                opts=pulumi.ResourceOptions(parent=data, provider=data.provider, depends_on=data.ready),
            )
            for account in (BACKUP_READER_SERVICE_ACCOUNT, QDRANT_SERVICE_ACCOUNT)
        ]
        _, readers = self.kubernetes.pod_role(
            "backup-reader",
            # The restore checks report to CloudWatch as well.
            replica_bucket_policy(bucket, PRIMARY_BACKUP_PREFIXES, extra_statements=[put_metrics_statement()]),
            [(namespace, BACKUP_READER_SERVICE_ACCOUNT)],
        )
        # The Postgres pods read prod's archive (the fallback) and write their own under dr/postgres/.
        _, postgres = self.kubernetes.pod_role(
            "postgres",
            replica_bucket_policy(bucket, (POSTGRES_PREFIX,), write_prefix=f"{OWN_ARCHIVE_PREFIX}/"),
            [(namespace, PRIMARY_POSTGRES)],
        )
        _, writers = self.kubernetes.pod_role(
            "qdrant",
            replica_bucket_policy(bucket, (), write_prefix=QDRANT_DR_PREFIX),
            [(namespace, QDRANT_SERVICE_ACCOUNT)],
        )
        return [*accounts, *readers, *postgres, *writers]


def primary_stores(args: DrRegionArgs, postgres_server_name: pulumi.Input[str]) -> list[CheckedStore]:
    """The primary's stores as its backups name them (platform.py: `postgres`, `redis`,
    `qdrant-<n>`), sized by this stack's data layer, which mirrors prod's."""
    return [
        CheckedStore(PRIMARY_POSTGRES, "postgres", args.postgres.storage_gib, server_name=postgres_server_name),
        CheckedStore(PRIMARY_REDIS, "redis", args.redis.storage_gib),
        *(CheckedStore(f"qdrant-{i}", "qdrant", args.qdrant.storage_gib) for i in range(args.qdrant.clusters)),
    ]


def admitted_host(host: str, allowed: Sequence[str], nat_ips: Sequence[str | None]) -> str:
    """`host`, or a stop naming prod's key and the /32s it must list."""
    networks = [ipaddress.IPv4Network(cidr) for cidr in allowed]
    missing = [f"{ip}/32" for ip in nat_ips if ip and not any(ipaddress.IPv4Address(ip) in net for net in networks)]
    if missing:
        raise ValueError(
            "the prod stack's sophia:dataLayer.postgres.drReplication.allowedCidrs must admit this region's "
            f"NAT addresses {missing}: add them, run `pulumi up -s prod`, then `pulumi up -s dr` again "
            "(docs/dr.md, Bring-up)"
        )
    return host


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


def _same_copy(bucket: str, region: str | None, dr: DrSettings) -> str:
    """The replica prod writes is the one this region reads: same bucket, and in this region (the
    restore checks, Qdrant's restores and the WAL-archive fallback all read it here)."""
    if bucket != dr.backup_replica_bucket:
        raise ValueError(
            f"sophia:dr.backupReplicaBucket is {dr.backup_replica_bucket!r} but the prod stack replicates to {bucket!r}"
        )
    if region != dr.aws_region:
        raise ValueError(
            f"the prod stack replicates its backups to {region!r} (its sophia:backups.replicaRegion) but "
            f"sophia:dr.awsRegion is {dr.aws_region!r}: the DR region must hold the copy it restores from"
        )
    return bucket
