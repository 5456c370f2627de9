"""Monitoring settings: each rule, broken alone on the valid prod config, names its key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.settings.broken import Broken, assert_rejected, monitoring

BROKEN: list[Broken] = [
    (
        "ratio of 90",
        "sophia:monitoring",
        monitoring(thresholds={"memoryUsage": 90}),
        "sophia:monitoring.thresholds.memoryUsage",
    ),
    (
        "ratio as text",
        "sophia:monitoring",
        monitoring(thresholds={"errorRate": "0.05"}),
        "sophia:monitoring.thresholds.errorRate",
    ),
    (
        "zero duration",
        "sophia:monitoring",
        monitoring(thresholds={"cpuMinutes": 0}),
        "sophia:monitoring.thresholds.cpuMinutes",
    ),
    (
        "misspelt threshold",
        "sophia:monitoring",
        monitoring(thresholds={"cpuUsagePercent": 80}),
        "sophia:monitoring.thresholds.cpuUsagePercent",
    ),
    ("no monitoring", "sophia:monitoring", None, "sophia:monitoring"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)
