"""`StackSettings`: every domain's settings composed into one validated, frozen object per stack."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, model_validator

from policies.catalog import load_lambda_catalog
from settings.backup import BackupSettings
from settings.base import CostTags, Environment, SettingsModel
from settings.compute import (
    AutoscalerSettings,
    ClusterJoinSettings,
    FallbackRegions,
    GpuPools,
    LambdaAccessSettings,
    LambdaRegion,
    hourly_cost_usd,
)
from settings.data import DataLayerSettings, KubernetesSettings
from settings.dr import DrSettings
from settings.errors import RuleError
from settings.observability import MonitoringSettings
from settings.operators import OperatorsSettings
from settings.services import (
    DR_CLIENT_NAMESPACES,
    DR_INSTANCE_TYPES,
    FleetSettings,
    InstanceShape,
    Services,
    fleet_problems,
)


class StackSettings(SettingsModel):
    """Everything a stack is configured with, validated as a whole."""

    environment: Environment
    """Which environment this stack is: prod, dr or dev."""
    lambda_region: LambdaRegion | None = None
    """Lambda Cloud region the GPU pools launch in; required when there are pools."""
    lambda_fallback_regions: FallbackRegions = ()
    """Regions tried in order when the primary has no capacity."""
    gpu_pools: GpuPools = ()
    """The GPU instance pools."""
    lambda_access: LambdaAccessSettings | None = None
    """SSH key and allowed networks for the pools; required when there are pools."""
    cluster_join: ClusterJoinSettings | None = None
    """If set, instances join the cluster at boot (needs the secret sophia:clusterJoinToken)."""
    autoscaler: AutoscalerSettings | None = None
    """If set, cluster-autoscaler scales the pools between their floor and `max` (needs gpuPools,
    clusterJoin and kubernetes)."""
    data_layer: DataLayerSettings
    """Sizes of Redis, PostgreSQL and Qdrant."""
    kubernetes: KubernetesSettings | None = None
    """The primary region's cluster; required in prod and dev (dr runs on AWS)."""
    backups: BackupSettings | None = None
    """Backup destination; required wherever `kubernetes` is set."""
    monitoring: MonitoringSettings | None = None
    """Monitoring and alerting; required wherever `kubernetes` is set."""
    dr: DrSettings | None = None
    """The DR region; required in the dr environment."""
    operators: OperatorsSettings = OperatorsSettings()
    """Install each operator (pinned) or use the cluster's own."""
    services: Services = ()
    """The service fleet: the platform's services on the GPU pools (docs/services.md)."""
    fleet: FleetSettings | None = None
    """What the fleet shares: namespace, gateway, tracing; required when `services` is not empty."""
    monthly_budget_usd: Annotated[Decimal, Field(gt=0, le=10_000_000, allow_inf_nan=False)]
    """Most the stack may cost per month, USD."""
    tags: CostTags
    """Owner and cost-centre tags."""

    @model_validator(mode="after")
    def _cross_field(self) -> StackSettings:
        """Pools need lambdaRegion and lambdaAccess; autoscaler needs gpuPools, clusterJoin and kubernetes,
        and every pool must be able to run a node (min above 0, offHours, or scaleFromZero); fallbacks do
        not repeat lambdaRegion; dr needs sophia:dr; prod and dev need kubernetes, which needs backups and
        monitoring; prod backups are replicated."""
        problems: list[tuple[str, str]] = []
        if self.gpu_pools and self.lambda_region is None:
            problems.append(("lambdaRegion", "is required when gpuPools is not empty"))
        if self.gpu_pools and self.lambda_access is None:
            problems.append(("lambdaAccess", "is required when gpuPools is not empty"))
        if self.lambda_region is not None and self.lambda_region in self.lambda_fallback_regions:
            problems.append(("lambdaFallbackRegions", f"must not repeat the primary region {self.lambda_region}"))
        if self.environment is Environment.DR and self.dr is None:
            problems.append(("dr", "is required when environment is dr"))
        if self.environment is not Environment.DR and self.kubernetes is None:
            problems.append(("kubernetes", f"is required when environment is {self.environment.value}"))
        if self.kubernetes is not None and self.backups is None:
            problems.append(("backups", "is required when kubernetes is set (the stores back up to S3)"))
        if self.kubernetes is not None and self.monitoring is None:
            problems.append(("monitoring", "is required when kubernetes is set (alerts and restore checks)"))
        if self.environment is Environment.PROD and self.backups is not None and self.backups.replica_bucket is None:
            problems.append(("backups.replicaBucket", "is required in prod (backups are copied to the DR region)"))
        problems += self._lease_table_problems(already=problems)
        problems += self._autoscaler_problems()
        if problems:
            raise RuleError(problems)
        return self

    def _autoscaler_problems(self) -> list[tuple[str, str]]:
        """With the autoscaler: the pools, their join and the cluster exist, and each pool can run a node."""
        if self.autoscaler is None:
            return []
        problems = [
            ("autoscaler", f"needs {key}: burst nodes join the primary cluster to take pods")
            for key, missing in (
                ("gpuPools", not self.gpu_pools),
                ("clusterJoin", self.cluster_join is None),
                ("kubernetes", self.kubernetes is None),
            )
            if missing
        ]
        for index, pool in enumerate(self.gpu_pools):
            if pool.min == 0 and pool.off_hours is None and not pool.scale_from_zero:
                problems.append(
                    (
                        f"gpuPools.{index}.scaleFromZero",
                        "false with min 0 and no offHours: the pool could never run a node "
                        "(raise min, add offHours, or allow scaling from zero)",
                    )
                )
        return problems

    @model_validator(mode="after")
    def _fleet(self) -> StackSettings:
        """Services need fleet; each service's pools exist (in dr: fleet.nodeGroups) and one replica
        fits a node of each; the cluster is Kubernetes 1.33 or newer; the fleet's namespace is one of
        the stores' client namespaces; in dr the services need monitoring (KEDA's Prometheus)."""
        fleet, problems = self.fleet, []
        groups = fleet.node_groups if fleet is not None else ()
        if self.environment is Environment.DR:
            pools: dict[str, InstanceShape] = {g.pool: DR_INSTANCE_TYPES[g.instance_type] for g in groups}
            version = ("dr.eks.version", self.dr.eks.version) if self.dr is not None else None
            namespaces: tuple[str, ...] | None = DR_CLIENT_NAMESPACES
            if self.services and self.monitoring is None:
                problems.append(
                    ("monitoring", "is required when services is not empty (KEDA's triggers read Prometheus)")
                )
            if (
                fleet is not None
                and self.dr is not None
                and fleet.gateway.hosted_zone_id != self.dr.failover.hosted_zone_id
            ):
                problems.append(
                    (
                        "fleet.gateway.hostedZoneId",
                        f"must be the failover's zone, dr.failover.hostedZoneId ({self.dr.failover.hosted_zone_id})",
                    )
                )
            if self.services and fleet is not None and not groups:
                # One error for the cause, not one per service whose pool is then missing.
                problems.append(("fleet.nodeGroups", "must list an EKS node group per pool the services run on"))
                raise RuleError(problems)
        else:
            catalog = load_lambda_catalog()
            pools = {pool.name: catalog.instance_type(pool.instance_type) for pool in self.gpu_pools}
            kubernetes = self.kubernetes
            version = ("kubernetes.version", kubernetes.version) if kubernetes is not None else None
            namespaces = kubernetes.client_namespaces if kubernetes is not None else None
            if groups:
                problems.append(("fleet.nodeGroups", "is for the dr stack only; here the pools are gpuPools"))
        problems += fleet_problems(self.services, fleet, pools, version=version, client_namespaces=namespaces)
        if (
            self.services
            and fleet is not None
            and fleet.prometheus_url is None
            and self.operators.prometheus_stack == "existing"
        ):
            problems.append(
                (
                    "fleet.prometheusUrl",
                    "is required when operators.prometheusStack is existing (the triggers query it)",
                )
            )
        if problems:
            raise RuleError(problems)
        return self

    def _lease_table_problems(self, already: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """failoverLeaseTable needs the DR region, which the stack knows as backups.replicaRegion
        (unless prod's missing replica is already reported: one error per cause)."""
        replication = self.data_layer.postgres.dr_replication
        lease_table = replication.failover_lease_table if replication is not None else None
        replica_reported = any(key == "backups.replicaBucket" for key, _ in already)
        missing_region = self.backups is None or self.backups.replica_region is None
        if lease_table is None or not missing_region or replica_reported:
            return []
        return [
            (
                "dataLayer.postgres.drReplication.failoverLeaseTable",
                "needs backups.replicaRegion: the lease table lives in the DR region, where backups are copied",
            )
        ]

    @property
    def has_aws_alarms(self) -> bool:
        """CloudWatch alarms exist: on backup replication (a replica bucket), or in the DR region."""
        replicated = self.backups is not None and self.backups.replica_bucket is not None
        return replicated or self.dr is not None

    @property
    def hourly_gpu_cost_usd(self) -> Decimal:
        """What the pools cost per hour at their desired size, from the price catalog."""
        return hourly_cost_usd(self.gpu_pools)
