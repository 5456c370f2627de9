"""Alertmanager routing by severity (pure: no resources).

Critical pages immediately (PagerDuty and the team channel), warnings reach the team channel
within `warningWithinMinutes`, info alerts are batched into one digest every `digestHours`.
The receivers' credentials are never in this document: it names files in the Secret
`RECEIVERS_SECRET`, which the Alertmanager pods mount, so the config and the chart values that
carry it hold no secret.
"""

from __future__ import annotations

from typing import Any

from settings.observability import AlertRoutingSettings

RECEIVERS_SECRET = "alertmanager-receivers"  # noqa: S105 - a Secret's name, not its value
PAGERDUTY_KEY_FILE = "pagerduty-routing-key"
SLACK_URL_FILE = "slack-webhook-url"
# Where the Prometheus Operator mounts `alertmanagerSpec.secrets`.
SECRETS_DIR = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}"


def _slack(title: str) -> dict[str, Any]:
    return {
        "api_url_file": f"{SECRETS_DIR}/{SLACK_URL_FILE}",
        "send_resolved": True,
        "title": title + " {{ .CommonLabels.alertname }} ({{ .Alerts | len }})",
        "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
    }


def render_alertmanager_config(routing: AlertRoutingSettings) -> dict[str, Any]:
    """The `alertmanager.yaml` document."""
    return {
        "route": {
            "receiver": "team-channel",
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": "pager",
                    "matchers": ['severity="critical"'],
                    "group_wait": "0s",
                    "group_interval": "1m",
                    "repeat_interval": "1h",
                },
                {
                    "receiver": "team-channel",
                    "matchers": ['severity="warning"'],
                    # First notice within a few minutes; later alerts of the group within the window.
                    "group_wait": f"{min(5, routing.warning_within_minutes)}m",
                    "group_interval": f"{routing.warning_within_minutes}m",
                    "repeat_interval": "4h",
                },
                {
                    "receiver": "digest",
                    "matchers": ['severity="info"'],
                    # Every info alert lands in one group, sent once per digest period.
                    "group_by": ["severity"],
                    "group_wait": f"{routing.digest_hours}h",
                    "group_interval": f"{routing.digest_hours}h",
                    "repeat_interval": f"{routing.digest_hours}h",
                },
            ],
        },
        # While a target is down, its warnings add nothing to the page.
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~"warning|info"'],
                "equal": ["namespace", "service"],
            }
        ],
        "receivers": [
            {
                "name": "pager",
                "pagerduty_configs": [
                    {
                        "routing_key_file": f"{SECRETS_DIR}/{PAGERDUTY_KEY_FILE}",
                        "severity": "critical",
                        "send_resolved": True,
                    }
                ],
                "slack_configs": [_slack("[PAGE]")],
            },
            {"name": "team-channel", "slack_configs": [_slack("[warning]")]},
            {"name": "digest", "slack_configs": [_slack("[daily digest]")]},
        ],
    }
