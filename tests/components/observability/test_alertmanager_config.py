"""Alertmanager routing, checked with the real `amtool` (Debian `prometheus-alertmanager`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability.alertmanager_config import (
    SECRETS_DIR,
    render_alertmanager_config,
    render_alertmanager_config_resource,
)
from settings.observability import AlertRoutingSettings
from tests.k8s_schemas import validate_custom_resource
from tests.tools_on_path import require_tool


def write_config(tmp_path: Path, routing: AlertRoutingSettings | None = None) -> Path:
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(render_alertmanager_config(routing or AlertRoutingSettings())))
    return path


def amtool(*args: str) -> str:
    result = subprocess.run([require_tool("amtool"), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_config_passes_amtool_check(tmp_path: Path) -> None:
    assert "SUCCESS" in amtool("check-config", str(write_config(tmp_path)))


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "pager"), ("warning", "team-channel"), ("info", "digest")]
)
def test_each_severity_routes_to_its_receiver(tmp_path: Path, severity: str, receiver: str) -> None:
    config = write_config(tmp_path)
    routed = amtool("config", "routes", "test", f"--config.file={config}", f"severity={severity}", "alertname=X")
    assert routed.split() == [receiver]


def test_timing_follows_the_routing_settings() -> None:
    routes = render_alertmanager_config(AlertRoutingSettings(warning_within_minutes=20, digest_hours=12))["route"]
    by_receiver = {route["receiver"]: route for route in routes["routes"]}
    assert by_receiver["pager"]["group_wait"] == "0s"
    assert by_receiver["team-channel"]["group_interval"] == "20m"
    assert by_receiver["digest"]["group_wait"] == by_receiver["digest"]["repeat_interval"] == "12h"


def test_no_credential_in_the_document() -> None:
    """Receivers read their key and URL from the mounted Secret; the config only names files."""
    text = yaml.safe_dump(render_alertmanager_config(AlertRoutingSettings()))
    assert "routing_key:" not in text
    assert "api_url:" not in text
    assert text.count(SECRETS_DIR) == 4


@pytest.mark.parametrize(
    ("url", "receiver"), [(None, "null"), ("https://hc-ping.example.com/2f1c6a7e", "deadmans-switch")]
)
def test_the_watchdog_reaches_the_dead_mans_switch_or_nobody(tmp_path: Path, url: str | None, receiver: str) -> None:
    config = write_config(tmp_path, AlertRoutingSettings(dead_mans_switch_url=url))
    assert "SUCCESS" in amtool("check-config", str(config))
    # The chart's Watchdog carries severity "none"; it must never reach a person.
    routed = amtool("config", "routes", "test", f"--config.file={config}", "alertname=Watchdog", "severity=none")
    assert routed.split() == [receiver]
    routed = amtool("config", "routes", "test", f"--config.file={config}", "alertname=InfoInhibitor", "severity=none")
    assert routed.split() == ["null"]


def test_the_routing_as_an_alertmanager_config_fits_its_crd() -> None:
    routing = AlertRoutingSettings(dead_mans_switch_url="https://hc-ping.example.com/2f1c6a7e")
    resource: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": "sophia-routing", "namespace": "monitoring"},
        "spec": render_alertmanager_config_resource(routing),
    }
    assert validate_custom_resource(resource) == []
    spec = resource["spec"]
    assert [r["receiver"] for r in spec["route"]["routes"]][:2] == ["deadmans-switch", "null"]
    pager = next(r for r in spec["receivers"] if r["name"] == "pager")
    assert pager["pagerdutyConfigs"][0]["routingKey"] == {
        "name": "alertmanager-receivers",
        "key": "pagerduty-routing-key",
    }
