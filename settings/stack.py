"""Read the running stack's config from the Pulumi engine, once, into a `StackConfig`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi.runtime import config as runtime_config

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
