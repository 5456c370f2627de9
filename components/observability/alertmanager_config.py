"""Alertmanager routing by severity (pure: no resources).

Critical pages immediately (PagerDuty and the team channel), warnings reach the team channel
within `warningWithinMinutes`, info alerts are batched into one digest every `digestHours`.
The receivers' credentials are never in this document: it names files in the Secret
`RECEIVERS_SECRET`, which the Alertmanager pods mount, so the config and the chart values that
carry it hold no secret.
"""

from __future__ import annotations

import re
from typing import Any

from settings.observability import AlertRoutingSettings

RECEIVERS_SECRET = "alertmanager-receivers"  # noqa: S105 - a Secret's name, not its value
PAGERDUTY_KEY_FILE = "pagerduty-routing-key"
SLACK_URL_FILE = "slack-webhook-url"
# Where the Prometheus Operator mounts `alertmanagerSpec.secrets`.
SECRETS_DIR = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}"
NOWHERE = "null"
"""A receiver with no integration: what reaches it is dropped."""
DEAD_MANS_SWITCH = "deadmans-switch"
WATCHDOG_REPEAT_MINUTES = 5


def _slack(title: str) -> dict[str, Any]:
    return {
        "api_url_file": f"{SECRETS_DIR}/{SLACK_URL_FILE}",
        "send_resolved": True,
        "title": title + " {{ .CommonLabels.alertname }} ({{ .Alerts | len }})",
        "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
    }


def _watchdog_routes(routing: AlertRoutingSettings) -> list[dict[str, Any]]:
    """The chart's always-firing Watchdog goes to the dead man's switch (or nowhere, never to a
    person); its InfoInhibitor helper goes nowhere."""
    return [
        {
            "receiver": DEAD_MANS_SWITCH if routing.dead_mans_switch_url else NOWHERE,
            "matchers": ['alertname="Watchdog"'],
            "group_wait": "0s",
            "group_interval": "1m",
            "repeat_interval": f"{WATCHDOG_REPEAT_MINUTES}m",
        },
        {"receiver": NOWHERE, "matchers": ['alertname="InfoInhibitor"']},
    ]


def render_alertmanager_config(routing: AlertRoutingSettings) -> dict[str, Any]:
    """The `alertmanager.yaml` document."""
    receivers: list[dict[str, Any]] = [{"name": NOWHERE}]
    if routing.dead_mans_switch_url:
        receivers.append(
            {
                "name": DEAD_MANS_SWITCH,
                "webhook_configs": [{"url": routing.dead_mans_switch_url, "send_resolved": False}],
            }
        )
    return {
        "route": {
            "receiver": "team-channel",
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                *_watchdog_routes(routing),
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
            *receivers,
        ],
    }


def _matcher(text: str) -> dict[str, str]:
    """`severity="critical"` -> the AlertmanagerConfig matcher object."""
    name, operator, value = re.fullmatch(r'(\w+)(=~|!=|=)"(.*)"', text).groups()  # type: ignore[union-attr]
    return {"name": name, "matchType": operator, "value": value}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _route_spec(route: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for key, value in route.items():
        if key == "matchers":
            spec["matchers"] = [_matcher(m) for m in value]
        elif key == "routes":
            spec["routes"] = [_route_spec(r) for r in value]
        else:
            spec[_camel(key)] = value
    return spec


def render_alertmanager_config_resource(routing: AlertRoutingSettings) -> dict[str, Any]:
    """The same routing as an `AlertmanagerConfig` (monitoring.coreos.com/v1alpha1) spec, for an
    Alertmanager the cluster already runs: receivers read their key and URL from Secret
    `RECEIVERS_SECRET` through the operator, so no credential is in the object either."""
    config = render_alertmanager_config(routing)
    secret = {"name": RECEIVERS_SECRET}

    def slack(title: str) -> dict[str, Any]:
        rendered = _slack(title)
        return {
            "apiURL": {**secret, "key": SLACK_URL_FILE},
            "sendResolved": True,
            "title": rendered["title"],
            "text": rendered["text"],
        }

    receivers: list[dict[str, Any]] = [
        {
            "name": "pager",
            "pagerdutyConfigs": [
                {"routingKey": {**secret, "key": PAGERDUTY_KEY_FILE}, "severity": "critical", "sendResolved": True}
            ],
            "slackConfigs": [slack("[PAGE]")],
        },
        {"name": "team-channel", "slackConfigs": [slack("[warning]")]},
        {"name": "digest", "slackConfigs": [slack("[daily digest]")]},
        {"name": NOWHERE},
    ]
    if routing.dead_mans_switch_url:
        receivers.append(
            {"name": DEAD_MANS_SWITCH, "webhookConfigs": [{"url": routing.dead_mans_switch_url, "sendResolved": False}]}
        )
    inhibit = config["inhibit_rules"][0]
    return {
        "route": _route_spec(config["route"]),
        "receivers": receivers,
        "inhibitRules": [
            {
                "sourceMatch": [_matcher(m) for m in inhibit["source_matchers"]],
                "targetMatch": [_matcher(m) for m in inhibit["target_matchers"]],
                "equal": inhibit["equal"],
            }
        ],
    }
