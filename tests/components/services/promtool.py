"""Run `promtool test rules` on a rule document and one test case (the real Prometheus evaluator)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.tools_on_path import require_tool


def promtool_test(
    tmp: Path,
    rules: dict[str, Any],
    series: dict[str, str],
    *,
    alerts: list[dict[str, Any]] | None = None,
    exprs: list[dict[str, Any]] | None = None,
    interval: str = "1m",
) -> None:
    """Fails with promtool's report unless every expected alert and expression value holds."""
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules))
    case: dict[str, Any] = {
        "interval": interval,
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
    }
    if alerts:
        case["alert_rule_test"] = alerts
    if exprs:
        case["promql_expr_test"] = exprs
    document = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [case]}
    (tmp / "test.yaml").write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", "test.yaml"], cwd=tmp, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def promtool_check(tmp: Path, rules: dict[str, Any]) -> str:
    """`promtool check rules`: every expression parses; returns promtool's output."""
    path = tmp / "check.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
