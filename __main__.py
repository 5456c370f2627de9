"""The sophia Pulumi program: read the settings once, build the platform, export its outputs."""

import pulumi

from components.platform import PlatformArgs, SophiaPlatform
from policies.catalog import load_lambda_catalog
from settings import SettingsError, load_stack_config
from settings.services import service_recovery

try:
    stack_config = load_stack_config()
except SettingsError as error:
    # RunError prints the one-line message without a Python traceback.
    raise pulumi.RunError(str(error)) from None

settings = stack_config.settings
platform = SophiaPlatform(
    f"sophia-{settings.environment.value}",
    PlatformArgs(
        settings=settings,
        lambda_api_key=stack_config.lambda_api_key,
        cluster_join_token=stack_config.cluster_join_token,
        kubeconfig=stack_config.kubeconfig,
        backup_credentials=stack_config.backup_credentials,
        alert_receivers=stack_config.alert_receivers,
        aws_alarm_pagerduty_url=stack_config.aws_alarm_pagerduty_url,
        postgres_lease=stack_config.postgres_lease,
    ),
)

pulumi.export("environment", settings.environment.value)
pulumi.export("monthlyBudgetUsd", float(settings.monthly_budget_usd))
pulumi.export("gpuHourlyCostUsd", float(settings.hourly_gpu_cost_usd))
pulumi.export("priceCatalogAsOf", load_lambda_catalog().as_of.isoformat())
if platform.backup_bucket is not None:
    # Read by the dr stack through its StackReference.
    pulumi.export("backupReplicaBucket", platform.backup_bucket.replica_bucket_name)
    pulumi.export("backupReplicaRegion", settings.backups.replica_region if settings.backups else None)
replication = platform.postgres.replication if platform.postgres is not None else None
if replication is not None:
    # The dr stack's Postgres replica streams from here with these (the key is a secret).
    pulumi.export("postgresReplicationHost", replication.hostname)
    pulumi.export("postgresReplicationServerCa", replication.server_ca_pem)
    pulumi.export("postgresReplicationCert", replication.client_cert_pem)
    pulumi.export("postgresReplicationKey", replication.client_key_pem)
    # The dr stack stops until its NAT addresses are all in here (bring-up: prod -> dr -> prod -> dr).
    pulumi.export("postgresReplicationAllowedCidrs", list(replication.allowed_cidrs))
    # The lease table prod's failover guard renews; the dr stack checks it is its own.
    dr_replication = settings.data_layer.postgres.dr_replication
    lease_table = dr_replication.failover_lease_table if dr_replication is not None else None
    pulumi.export("postgresFailoverLeaseTable", lease_table)
    # The dr stack reads prod's archive (its fallback, its restore check) under this server name.
    pulumi.export("postgresArchiveServerName", settings.data_layer.postgres.archive_server_name)
if platform.dr_region is not None:
    pulumi.export("drCacheEndpoint", platform.dr_region.cache.endpoint)
    pulumi.export("drCacheAuthToken", platform.dr_region.cache.auth_token)
    pulumi.export("drWorstCaseFailoverSeconds", platform.dr_region.failover.worst_case_failover_seconds)
    if settings.services and settings.dr is not None:
        # Each service's RTO arithmetic: DNS failover, then serving (warm: at once) and the first scale-up.
        dns = settings.dr.failover.worst_case_failover_seconds
        pulumi.export(
            "drServiceRecoverySeconds",
            {
                s.name: {"serving": r.serving_seconds, "scaledUp": r.scaled_seconds}
                for s in settings.services
                for r in [service_recovery(s, dns)]
            },
        )
    # prod's sophia:dataLayer.postgres.drReplication.failoverLeaseTable names this table.
    pulumi.export("failoverLeaseTable", platform.dr_region.lease_table)
    pulumi.export("failoverPromoterFunction", platform.dr_region.promoter.function_name)
    # `python -m failover.cli failback --health-check` releases this check's pin (the DR runbook).
    pulumi.export("primaryHealthCheckId", platform.dr_region.failover.primary_health_check_id)
    # Set these as the prod stack's sophia:dataLayer.postgres.drReplication.allowedCidrs (/32 each).
    pulumi.export("drNatPublicIps", platform.dr_region.network.nat_public_ips)
fleet = platform.gpu_fleet
pulumi.export(
    "gpuPools",
    {
        pool.pool_name: {
            "instanceIds": fleet.pool_instances(pool.pool_name).apply(lambda i: [x["instance_id"] for x in i]),
            "ips": fleet.pool_instances(pool.pool_name).apply(lambda i: [x["ip"] for x in i]),
            "hourlyCostUsd": pool.hourly_cost_usd,
        }
        for pool in platform.gpu_pools
    }
    if fleet is not None
    else {},
)
