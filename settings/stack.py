"""Read the running stack's config from the Pulumi engine, once, into a `StackConfig`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi.runtime import config as runtime_config

from failover import stack_lease
from failover.stack_lease import LeaseReadError, LeaseView
from settings.errors import Problem, SettingsError
from settings.load import NAMESPACE, SECRET_KEYS, parse_settings
from settings.model import StackSettings


@dataclass(frozen=True)
class AlertReceivers:
    """Alertmanager receivers' credentials, as Pulumi secrets."""

    pagerduty_routing_key: pulumi.Output[str]
    slack_webhook_url: pulumi.Output[str]


@dataclass(frozen=True)
class StackConfig:
    """The validated settings plus the secrets the program needs, as Pulumi secret outputs."""

    settings: StackSettings
    lambda_api_key: pulumi.Output[str] | None
    """Only where the stack has GPU pools; the dynamic provider reads it itself at call time."""
    cluster_join_token: pulumi.Output[str] | None = None
    """Only where `clusterJoin` is set."""
    kubeconfig: pulumi.Output[str] | None = None
    """Only where `kubernetes` is set."""
    backup_credentials: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None
    """(access key id, secret access key) of the backup writer, where `backups` is set."""
    alert_receivers: AlertReceivers | None = None
    """Where `monitoring` is set."""
    aws_alarm_pagerduty_url: pulumi.Output[str] | None = None
    """Where the stack has AWS alarms: backups replicated to another region, or the DR region."""
    postgres_lease: LeaseView | None = None
    """The lease on the PostgreSQL primary role: in dr, and in prod once its guard is configured."""


def engine_config() -> dict[str, str]:
    """Every config value the engine passed: `PULUMI_CONFIG` from the CLI, or set directly (tests)."""
    merged: dict[str, str] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def engine_secret_keys() -> set[str]:
    return set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())


def load_stack_config() -> StackConfig:
    """Validate everything first; only then touch secrets. Raises `SettingsError`."""
    config = engine_config()
    settings = parse_settings(config)
    needed = [
        key
        for key, wanted in (
            ("lambdaApiKey", bool(settings.gpu_pools)),
            ("clusterJoinToken", settings.cluster_join is not None),
            ("kubeconfig", settings.kubernetes is not None),
            ("backupAccessKeyId", settings.backups is not None),
            ("backupSecretAccessKey", settings.backups is not None),
            ("alertPagerdutyRoutingKey", settings.monitoring is not None),
            ("alertSlackWebhookUrl", settings.monitoring is not None),
            ("awsAlarmPagerdutyUrl", settings.has_aws_alarms),
        )
        if wanted
    ]
    secret_keys = engine_secret_keys()
    problems = []
    for key in needed:
        full = f"{NAMESPACE}:{key}"
        if full not in config:
            problems.append(Problem(full, f"is required: the {SECRET_KEYS[key]}"))
        elif full not in secret_keys:
            problems.append(Problem(full, f"must be set as a secret (pulumi config set --secret {full} ...)"))
    if problems:
        raise SettingsError(problems)
    stack_config = pulumi.Config(NAMESPACE)
    secrets = {key: stack_config.require_secret(key) for key in needed}
    return StackConfig(
        postgres_lease=read_postgres_lease(settings),
        settings=settings,
        lambda_api_key=secrets.get("lambdaApiKey"),
        cluster_join_token=secrets.get("clusterJoinToken"),
        kubeconfig=secrets.get("kubeconfig"),
        backup_credentials=(
            (secrets["backupAccessKeyId"], secrets["backupSecretAccessKey"]) if "backupAccessKeyId" in secrets else None
        ),
        alert_receivers=(
            AlertReceivers(secrets["alertPagerdutyRoutingKey"], secrets["alertSlackWebhookUrl"])
            if "alertPagerdutyRoutingKey" in secrets
            else None
        ),
        aws_alarm_pagerduty_url=secrets.get("awsAlarmPagerdutyUrl"),
    )


def read_postgres_lease(settings: StackSettings) -> LeaseView | None:
    """Read the lease before anything is registered, so the program renders what it says (a fenced
    old primary, a promoted DR). Raises `SettingsError` naming the key when it cannot be read."""
    if settings.dr is not None:
        key, table, region = "dr.failover.leaseTable", settings.dr.failover.lease_table, settings.dr.aws_region
    else:
        replication = settings.data_layer.postgres.dr_replication
        if replication is None or replication.failover_lease_table is None:
            return None
        # Settings validation requires backups.replicaRegion with failoverLeaseTable.
        assert settings.backups is not None
        assert settings.backups.replica_region is not None
        key = "dataLayer.postgres.drReplication.failoverLeaseTable"
        table, region = replication.failover_lease_table, settings.backups.replica_region
    try:
        lease = stack_lease.READER(table, region)
    except LeaseReadError as error:
        raise SettingsError([Problem(f"{NAMESPACE}:{key}", str(error))]) from None
    if settings.dr is None and not lease.table_exists:
        # prod names a table the dr stack has not created (yet): a typo, or the wrong bring-up order.
        raise SettingsError(
            [Problem(f"{NAMESPACE}:{key}", f"{lease.describe()}: deploy the dr stack first (docs/dr.md, bring-up)")]
        )
    if lease.dr_holds:
        pulumi.log.warn(
            f"{lease.describe()}: "
            + ("the DR database stays the primary" if settings.dr else "the primary's database stays fenced")
            + " until failback (docs/runbooks/dr-failover.md)"
        )
    return lease
