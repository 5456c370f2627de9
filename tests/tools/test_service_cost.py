"""The plan's cost per kind of service: each service's share of its pools, adding up to the pools."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.helpers import decoded, stack_config
from tools.harness import run_stack
from tools.plan import plan_document
from tools.plan_cost import stack_cost
from tools.plan_report import render_markdown
from tools.service_cost import IDLE, fleet_cost


def test_the_kinds_and_the_idle_capacity_add_up_to_the_pools_the_fleet_runs_on() -> None:
    run = run_stack("prod")
    cost = stack_cost(run)
    fleet = fleet_cost(run, cost)
    assert fleet is not None
    pools = {item.pool for item in fleet.services}
    # dev's instances are all burst (cluster-autoscaler's, outside the plan's total): nothing to share there.
    assert pools == {"ai-core", "business", "data"}
    pool_total = sum((v for g, v in cost.by_group().items() if g.removeprefix("gpu-pool/") in pools), Decimal(0))
    kinds = fleet.by_kind()
    assert set(kinds) == {"ai", "business", "data", IDLE}
    assert abs(sum(kinds.values()) - pool_total) < Decimal("0.01")
    assert "playground" not in fleet.by_service()


def test_a_bigger_floor_moves_cost_from_idle_to_its_kind() -> None:
    services = decoded(stack_config(), "sophia:services")
    billing = next(s for s in services if s["name"] == "billing")
    before = fleet_cost(run := run_stack("prod"), stack_cost(run))
    billing["replicas"] = {"min": 6, "max": 6}
    after_run = run_stack("prod", config_overrides={"sophia:services": json.dumps(services)})
    after = fleet_cost(after_run, stack_cost(after_run))
    assert before is not None
    assert after is not None
    assert after.by_kind()["business"] > before.by_kind()["business"]
    assert after.idle_usd["business"] < before.idle_usd["business"]
    assert after.by_service()["billing"] == 3 * before.by_service()["billing"]


def test_the_plan_document_and_comment_show_the_kinds() -> None:
    run = run_stack("prod")
    document = plan_document(run, stack_cost(run))
    assert set(document["cost"]["byServiceKind"]) == {"ai", "business", "data", IDLE}  # type: ignore[index]
    assert "| service kind (share of its pools) | per month |" in render_markdown(document)
    # In the DR region the pools are EKS node groups: the warm standby's cost splits the same way.
    dr = run_stack("dr")
    assert set(plan_document(dr, stack_cost(dr))["cost"]["byServiceKind"]) == {"ai", "business", "data", IDLE}  # type: ignore[index]


def test_in_dr_the_kinds_add_up_to_the_node_groups_at_their_desired_size() -> None:
    run = run_stack("dr")
    fleet = fleet_cost(run, stack_cost(run))
    assert fleet is not None
    # The standby runs the groups' desired size (the budget prices them at their max): ai-core and data
    # 2 x g6e.4xlarge 3.00424 x 730 = 4,386.1904 each, business 2 x m6i.2xlarge 0.384 x 730 = 560.64,
    # dev 0: 9,333.0208.
    assert abs(sum(fleet.by_kind().values()) - Decimal("9333.0208")) < Decimal("0.01")
