"""Backends, weights and cron windows (pure functions, no mocks)."""

from __future__ import annotations

import pytest

from components.services.backends import backends
from components.services.capability import GPU_TFLOPS, capability, split
from components.services.scaling import cron_window
from policies.catalog import load_lambda_catalog
from settings import parse_settings
from settings.compute import OffHoursSchedule
from settings.services import NextRelease, ServiceDrSettings
from tests.helpers import stack_config

SETTINGS = parse_settings(stack_config())
TYPES = {p.name: p.instance_type for p in SETTINGS.gpu_pools}
CUSTOMER_API = next(s for s in SETTINGS.services if s.name == "customer-api")


def test_every_catalog_instance_type_has_a_gpu_capability() -> None:
    assert set(GPU_TFLOPS) == set(load_lambda_catalog().instance_types)
    assert capability("gpu_8x_a100", uses_gpus=True) == 8 * capability("gpu_1x_a100", uses_gpus=True)
    assert capability("gpu_1x_a6000", uses_gpus=False) == 14  # CPU-only services weigh by vCPUs


@pytest.mark.parametrize(
    ("total", "shares", "parts"),
    [(1000, [989, 312], [760, 240]), (1000, [1, 1, 1], [334, 333, 333]), (0, [5, 5], [0, 0]), (100, [0, 0], [0, 0])],
)
def test_split_adds_up_to_the_total(total: int, shares: list[int], parts: list[int]) -> None:
    assert split(total, shares) == parts
    assert sum(parts) == (total if any(shares) else 0)


def test_the_next_release_at_weight_zero_stays_warm_on_one_replica() -> None:
    quiet = CUSTOMER_API.model_copy(
        update={"next": NextRelease(image="ghcr.io/sophia-ai/customer-api:2.8.0", weight=0)}
    )
    stable, nxt = backends(quiet, TYPES)
    assert (stable.weight, nxt.weight) == (1000, 0)
    assert (nxt.min_replicas, nxt.max_replicas) == (1, 1)
    assert stable.service_name == "customer-api-business"  # two backends: each behind its own Service


def test_dr_standby_keeps_standby_replicas_per_backend() -> None:
    standby = CUSTOMER_API.model_copy(update={"dr": ServiceDrSettings(standby_replicas=2)})
    stable, nxt = backends(standby, TYPES, standby=True)
    assert (stable.min_replicas, stable.max_replicas) == (2, 12)
    assert (nxt.min_replicas, nxt.max_replicas) == (1, 2)
    cold = CUSTOMER_API.model_copy(update={"dr": ServiceDrSettings(standby_replicas=0), "next": None})
    [only] = backends(cold, TYPES, standby=True)
    assert only.min_replicas == 0
    assert only.service_name == "customer-api"


@pytest.mark.parametrize(
    ("stop", "start", "weekends_off", "window"),
    [
        ("20:00", "07:00", True, ("0 7 * * 1-5", "0 20 * * 1-5")),
        ("20:30", "07:15", False, ("15 7 * * *", "30 20 * * *")),
        # A night shift: up from 22:00 to 06:00, the end on the next day.
        ("06:00", "22:00", True, ("0 22 * * 1-5", "0 6 * * 2-6")),
    ],
)
def test_the_cron_window_is_the_working_hours(
    stop: str, start: str, weekends_off: bool, window: tuple[str, str]
) -> None:
    schedule = OffHoursSchedule(timezone="UTC", stop_at=stop, start_at=start, weekends_off=weekends_off)
    assert cron_window(schedule) == window
