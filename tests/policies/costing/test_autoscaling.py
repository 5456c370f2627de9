"""The autoscaled pools' monthly outlook: floor, expected burst, off-hours saving, by hand-checked arithmetic."""

from __future__ import annotations

from decimal import Decimal

from policies.costing.autoscaling import outlook, working_hours_per_month


def test_a_pool_with_a_floor_and_headroom() -> None:
    [line] = outlook({"pools": [{"name": "ai", "instance_type": "gpu_1x_a100", "floor": 2, "min": 2, "max": 6}]})
    assert line.floor_usd == Decimal("1883.40")  # 2 x 1.29 x 730
    # a quarter of 4 spare nodes for 10 h on 21.7 working days, at 1.29/h
    assert line.expected_burst_usd == Decimal("279.93")
    assert line.off_hours_saving_usd == 0


def test_an_off_hours_pool_saves_its_minimum_outside_working_hours() -> None:
    schedule = {"timezone": "UTC", "start_at": "07:00", "stop_at": "20:00", "weekends_off": True}
    assert working_hours_per_month(schedule) == Decimal(13) * Decimal("21.7")
    pool = {"name": "dev", "instance_type": "gpu_1x_a10", "floor": 0, "min": 1, "max": 3, "off_hours": schedule}
    [line] = outlook({"pools": [pool]})
    assert line.floor_usd == 0
    assert line.off_hours_saving_usd == ((730 - Decimal("282.1")) * Decimal("0.75")).quantize(Decimal("0.01"))
    overnight = {**schedule, "start_at": "20:00", "stop_at": "07:00", "weekends_off": False}
    assert round(working_hours_per_month(overnight), 6) == round(Decimal(11) * Decimal(730) / 24, 6)
