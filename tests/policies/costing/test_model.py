"""The cost model's AWS prices that depend on how a resource is configured: Route 53 health-check
options and EKS extended support."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from policies.catalog.aws_prices import load_aws_prices
from policies.catalog.lambda_catalog import HOURS_PER_MONTH, load_lambda_catalog
from policies.costing import model
from tools.harness import run_stack
from tools.plan_cost import stack_cost


def price(token: str, props: dict[str, Any]) -> tuple[Decimal, str, str] | None:
    priced: tuple[Decimal, str, str] = model.PRICERS[token](props, None, load_lambda_catalog(), load_aws_prices())
    return priced


@pytest.mark.parametrize(
    ("props", "monthly", "options"),
    [
        ({"type": "HTTP", "requestInterval": 30.0}, "0.75", []),
        ({"type": "HTTPS", "requestInterval": 30.0}, "2.75", ["HTTPS"]),
        ({"type": "HTTPS_STR_MATCH", "requestInterval": 10.0}, "6.75", ["HTTPS", "string matching", "fast interval"]),
        (
            {"type": "HTTPS", "requestInterval": 10.0, "measureLatency": True},
            "6.75",
            ["HTTPS", "fast interval", "latency measurement"],
        ),
        ({"type": "CALCULATED"}, "0.50", None),
        ({"type": "CLOUDWATCH_METRIC"}, "0.50", None),
    ],
)
def test_health_checks_pay_for_each_option(props: dict[str, Any], monthly: str, options: list[str] | None) -> None:
    priced = price("aws:route53/healthCheck:HealthCheck", props)
    assert priced is not None
    assert priced[0] == Decimal(monthly)
    if options is not None:
        assert model.health_check_options(props) == options


@pytest.mark.parametrize(
    ("day", "hourly", "supported"),
    [(date(2025, 11, 25), "0.10", "standard"), (date(2025, 11, 26), "0.60", "extended")],
)
def test_eks_cluster_pays_extended_support_from_its_versions_end_of_standard_support(
    monkeypatch: pytest.MonkeyPatch, day: date, hourly: str, supported: str
) -> None:
    monkeypatch.setattr(model, "today", lambda: day)
    priced = price("aws:eks/cluster:Cluster", {"version": "1.31"})
    assert priced is not None
    assert priced[0] == Decimal(hourly) * HOURS_PER_MONTH
    assert supported in priced[1]


def test_the_dr_estimate_includes_the_checks_options_and_the_clusters_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "today", lambda: date(2026, 11, 24))  # the catalog's date; 1.33 is extended
    cost = stack_cost(run_stack("dr"))
    checks = [i for i in cost.items if i.resource_type == "aws:route53/healthCheck:HealthCheck"]
    # HTTPS, fast interval (10 s) and latency measurement on each of the two checks.
    assert [i.monthly_usd for i in checks] == [Decimal("6.75"), Decimal("6.75")]
    (cluster,) = [i for i in cost.items if i.resource_type == "aws:eks/cluster:Cluster"]
    assert cluster.monthly_usd == Decimal("0.60") * HOURS_PER_MONTH
    assert cluster.basis == "EKS 1.33 in extended support since 2026-07-29"
