"""The sophia Pulumi program: read the settings once, build the platform, export its outputs."""

import pulumi

from catalog import load_lambda_catalog
from components.platform import PlatformArgs, SophiaPlatform
from settings import SettingsError, load_stack_config

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
        cluster_join_token=stack_config.cluster_join_token,
        kubeconfig=stack_config.kubeconfig,
        backup_credentials=stack_config.backup_credentials,
        alert_receivers=stack_config.alert_receivers,
    ),
)

pulumi.export("environment", settings.environment.value)
pulumi.export("monthlyBudgetUsd", float(settings.monthly_budget_usd))
pulumi.export("gpuHourlyCostUsd", float(settings.hourly_gpu_cost_usd))
pulumi.export("priceCatalogAsOf", load_lambda_catalog().as_of.isoformat())
pulumi.export(
    "gpuPools",
    {
        pool.pool_name: {"instanceIds": pool.instance_ids, "ips": pool.ips, "hourlyCostUsd": pool.hourly_cost_usd}
        for pool in platform.gpu_pools
    },
)
