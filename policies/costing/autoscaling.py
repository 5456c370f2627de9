"""What an autoscaled pool costs a month: its floor, the burst it is expected to add, and what its off-hours
schedule saves (pure, standard library; kept apart from the resource cost model in `model.py`).

Input: the node-group service's pools document (`autoscaler/config.py` `ServiceConfig`, as JSON), which the
stack renders into a ConfigMap. Expected burst is an assumption, stated so the reader can redo it: on
average `BURST_SHARE` of a pool's headroom (`max` less its floor) runs through `BUSINESS_HOURS_PER_DAY` on
each working day; `bench/autoscale_day.py` measures a whole simulated day instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policies.catalog.lambda_catalog import HOURS_PER_MONTH, load_lambda_catalog

BURST_SHARE = Decimal("0.25")
BUSINESS_HOURS_PER_DAY = Decimal(10)
WORKING_DAYS_PER_MONTH = Decimal("21.7")  # 5/7 of 30.4 days
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class PoolOutlook:
    pool: str
    instance_type: str
    floor_usd: Decimal
    """The instances Pulumi runs all month (in the plan's resource total already)."""
    expected_burst_usd: Decimal
    """What the autoscaler is expected to add on top (not in the resource total)."""
    off_hours_saving_usd: Decimal
    """What `min` instances running all month would cost more than the schedule lets them."""


def _minutes(clock: str) -> int:
    hour, minute = clock.split(":")
    return int(hour) * 60 + int(minute)


def working_hours_per_month(schedule: Mapping[str, Any]) -> Decimal:
    """Hours a month an off-hours schedule keeps its pool on."""
    start, stop = _minutes(str(schedule["start_at"])), _minutes(str(schedule["stop_at"]))
    per_day = Decimal((stop - start) % (24 * 60)) / 60
    days = WORKING_DAYS_PER_MONTH if schedule.get("weekends_off", True) else DAYS_PER_MONTH
    return per_day * days


def outlook(document: Mapping[str, Any]) -> list[PoolOutlook]:
    """One line per pool of the pools document."""
    catalog = load_lambda_catalog()
    lines = []
    for pool in document.get("pools") or []:
        price = catalog.instance_type(str(pool["instance_type"])).price_usd_per_hour
        floor, minimum, maximum = int(pool["floor"]), int(pool["min"]), int(pool["max"])
        schedule = pool.get("off_hours")
        burst = BURST_SHARE * (maximum - floor) * BUSINESS_HOURS_PER_DAY * WORKING_DAYS_PER_MONTH * price
        saving = Decimal(0)
        if schedule:
            # The scheduled minimum runs only in working hours; the rest of the month is saved.
            on = working_hours_per_month(schedule)
            burst = BURST_SHARE * (maximum - minimum) * min(BUSINESS_HOURS_PER_DAY * WORKING_DAYS_PER_MONTH, on) * price
            burst += minimum * on * price
            saving = minimum * (HOURS_PER_MONTH - on) * price
        lines.append(
            PoolOutlook(
                pool=str(pool["name"]),
                instance_type=str(pool["instance_type"]),
                floor_usd=(floor * HOURS_PER_MONTH * price).quantize(Decimal("0.01")),
                expected_burst_usd=burst.quantize(Decimal("0.01")),
                off_hours_saving_usd=saving.quantize(Decimal("0.01")),
            )
        )
    return lines
