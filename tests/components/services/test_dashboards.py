"""The dashboards per kind of service: their JSON is a valid Grafana dashboard (the dashboard kind's
required fields, a 24-column grid without overlaps, unique panel ids), every query is valid PromQL
(`promtool check rules`) and selects only its kind's services (`promtool test rules`), and the
stack provisions exactly that JSON for Grafana's dashboard sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from components.services.dashboards import DASHBOARD_LABEL, DATASOURCE, dashboard, panel_queries
from settings import parse_settings
from settings.services import ServiceKind
from tests.components.services.promtool import promtool_check, promtool_test
from tests.helpers import stack_config
from tools.harness import run_stack

NAMESPACE = "sophia-apps"
SERVICES = parse_settings(stack_config()).services

# Grafana's dashboard kind (grafana/grafana kinds/dashboard, "schema-reference.md"): the fields a
# provisioned dashboard must carry, and the shape of its panels and Prometheus targets.
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "editable", "graphTooltip", "schemaVersion", "time", "panels"],
    "properties": {
        "uid": {"type": "string", "minLength": 8, "maxLength": 40, "pattern": "^[a-zA-Z0-9_-]+$"},
        "title": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "time": {"type": "object", "required": ["from", "to"]},
        "refresh": {"type": "string"},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": ["timeseries", "stat", "gauge", "table", "bargauge"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "h": {"type": "integer", "minimum": 1},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "y": {"type": "integer", "minimum": 0},
                        },
                    },
                    "datasource": {"const": DATASOURCE},
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["refId", "expr", "datasource"],
                            "properties": {"refId": {"type": "string"}, "expr": {"type": "string", "minLength": 1}},
                        },
                    },
                },
            },
        },
    },
}


def members(kind: ServiceKind) -> list[Any]:
    return [s for s in SERVICES if s.kind is kind]


@pytest.mark.parametrize("kind", list(ServiceKind), ids=[k.value for k in ServiceKind])
def test_each_dashboard_is_a_valid_grafana_dashboard(kind: ServiceKind, tmp_path: Path) -> None:
    document = dashboard(kind, members(kind), NAMESPACE)
    errors = [e.message for e in Draft202012Validator(DASHBOARD_SCHEMA).iter_errors(document)]
    assert errors == []
    panels = document["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24
        area = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & area, f"panel {panel['title']} overlaps another"
        cells |= area
    titles = {p["title"] for p in panels}
    for signal in ("Request rate", "p95", "Errors", "saturation", "Queue depth", "Replicas", "GPU"):
        assert any(signal in title for title in titles), signal
    # Every query parses: promtool checks each as a recording rule.
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [{"record": f"panel:{p['id']}", "expr": p["targets"][0]["expr"]} for p in panels],
            }
        ]
    }
    assert "SUCCESS" in promtool_check(tmp_path, rules)


def test_a_kinds_panels_show_only_its_services(tmp_path: Path) -> None:
    """Request rate and GPU use for the AI dashboard: the AI service's series, not the business one's."""
    queries = {title: expr for title, expr, _, _ in panel_queries(ServiceKind.AI, members(ServiceKind.AI), NAMESPACE)}
    series = {
        f'http_requests_total{{namespace="{NAMESPACE}",service="inference",kind="ai",code="200"}}': "0+600x20",
        f'http_requests_total{{namespace="{NAMESPACE}",service="billing",kind="business",code="200"}}': "0+600x20",
        f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{NAMESPACE}",exported_container="inference",gpu="0"}}': "80+0x20",
        f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{NAMESPACE}",exported_container="billing",gpu="0"}}': "5+0x20",
    }
    promtool_test(
        tmp_path,
        {"groups": []},
        series,
        exprs=[
            {
                "expr": queries["Request rate"],
                "eval_time": "10m",
                "exp_samples": [{"labels": '{service="inference"}', "value": 10}],
            },
            {
                "expr": queries["GPU use"],
                "eval_time": "10m",
                "exp_samples": [{"labels": '{exported_container="inference"}', "value": 80}],
            },
        ],
    )


def test_the_stack_provisions_one_dashboard_per_kind_for_grafana() -> None:
    run = run_stack("prod")
    maps = [
        r for r in run.by_type("kubernetes:core/v1:ConfigMap") if r.inputs["metadata"].get("labels") == DASHBOARD_LABEL
    ]
    assert len(maps) == len(ServiceKind)
    for config_map in maps:
        [(key, text)] = config_map.inputs["data"].items()
        document = json.loads(text)
        kind = ServiceKind(document["tags"][-1])
        assert key == f"sophia-services-{kind.value}.json"
        assert document == dashboard(kind, members(kind), NAMESPACE)
