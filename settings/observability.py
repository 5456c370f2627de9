"""Monitoring, the alert table and alert routing (`sophia:monitoring`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict, field_validator

from settings.backup import RestoreVerificationSettings
from settings.base import Minutes, PositiveSeconds, Ratio, SettingsModel, StorageGib


class AlertThresholds(SettingsModel):
    """The plan's alert table ("Monitoring and Alerts"); every number the rules use lives here."""

    service_down_minutes: Minutes = 2
    """Critical: a scrape target down this long."""
    latency_p95_seconds: PositiveSeconds = 1.0
    """Critical: p95 HTTP response time above this ..."""
    latency_minutes: Minutes = 5
    """... for this long."""
    error_rate: Ratio = 0.05
    """Critical: share of HTTP responses that are 5xx above this ..."""
    error_rate_minutes: Minutes = 2
    """... for this long."""
    memory_usage: Ratio = 0.90
    """Critical: node memory in use above this share ..."""
    memory_minutes: Minutes = 3
    """... for this long."""
    cpu_usage: Ratio = 0.80
    """Warning: node CPU busy above this share ..."""
    cpu_minutes: Minutes = 10
    """... for this long."""
    disk_usage: Ratio = 0.85
    """Warning: a node filesystem or data volume fuller than this ..."""
    disk_minutes: Minutes = 15
    """... for this long."""
    cache_hit_ratio: Ratio = 0.70
    """Warning: Redis keyspace hit ratio below this ..."""
    cache_hit_minutes: Minutes = 10
    """... for this long."""
    inter_service_success: Ratio = 0.90
    """Warning: share of successful service-to-service calls below this ..."""
    inter_service_minutes: Minutes = 5
    """... for this long (the plan gives no duration; 5 minutes filters single bad scrapes)."""
    cost_variance: Ratio = 0.10
    """Info: a day's GPU spend differs from the planned day by more than this share of the daily budget."""
    capacity_horizon_days: Annotated[int, Strict(), Field(ge=1, le=90)] = 7
    """Info: a volume or filesystem is predicted to fill within this many days."""


class AlertRoutingSettings(SettingsModel):
    """How Alertmanager delivers each severity (receivers' secrets are Pulumi secrets)."""

    warning_within_minutes: Minutes = 30
    """Warnings reach the team channel within this long (group interval)."""
    digest_hours: Annotated[int, Strict(), Field(ge=1, le=168)] = 24
    """Info alerts are batched into one digest this often."""
    dead_mans_switch_url: Annotated[str, Field(max_length=512)] | None = None
    """HTTPS ping URL of a dead man's switch (healthchecks.io, Dead Man's Snitch, ...): the
    always-firing Watchdog alert is sent there every 5 minutes, so its silence means alerting is
    broken. Unset: the Watchdog goes nowhere (it never reaches a person)."""

    @field_validator("dead_mans_switch_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        """An https:// URL with a host."""
        if value is not None and (not value.startswith("https://") or len(value) <= len("https://")):
            raise ValueError(f"must be an https:// URL, got {value!r}")
        return value


class MonitoringSettings(SettingsModel):
    """Prometheus, Alertmanager and Grafana on the primary cluster (`sophia:monitoring`)."""

    thresholds: AlertThresholds = AlertThresholds()
    """Alert thresholds; the defaults are the plan's table."""
    routing: AlertRoutingSettings = AlertRoutingSettings()
    """How each severity is delivered."""
    restore_verification: RestoreVerificationSettings = RestoreVerificationSettings()
    """The daily restore test of every store."""
    retention_days: Annotated[int, Strict(), Field(ge=1, le=365)] = 15
    """How long Prometheus keeps samples."""
    storage_gib: StorageGib = 100
    """Prometheus volume, GiB."""
    resource_labels: Annotated[dict[str, str], Field(default_factory=dict, max_length=16)]
    """Labels on our PrometheusRule, ServiceMonitors and AlertmanagerConfig, so a Prometheus the
    cluster already runs (`sophia:operators.prometheusStack: existing`) selects them, e.g.
    `{release: kube-prometheus-stack}`."""
