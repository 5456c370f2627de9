"""Loader for `lambda_catalog.json`: Lambda instance types (price, vCPUs, RAM, GPUs) and regions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

CATALOG_PATH = Path(__file__).with_name("lambda_catalog.json")

# Average hours in a month (8760 / 12): the convention cloud price pages use.
HOURS_PER_MONTH = Decimal(730)


@dataclass(frozen=True)
class InstanceType:
    """One Lambda instance type as priced on the catalog's date."""

    name: str
    price_usd_per_hour: Decimal
    vcpus: int
    memory_gib: int
    gpus: int
    gpu_description: str

    @property
    def price_cents_per_hour(self) -> int:
        """The price in the unit the Lambda API reports (`price_cents_per_hour`)."""
        return int(self.price_usd_per_hour * 100)


@dataclass(frozen=True)
class LambdaCatalog:
    """Instance types and regions, with the date and source of the figures."""

    as_of: date
    source: str
    instance_types: Mapping[str, InstanceType]
    regions: Mapping[str, str]

    def instance_type(self, name: str) -> InstanceType:
        try:
            return self.instance_types[name]
        except KeyError:
            raise KeyError(f"unknown Lambda instance type {name!r}") from None


def _parse(document: Mapping[str, Any]) -> LambdaCatalog:
    types = {
        name: InstanceType(
            name=name,
            # Through str so 0.75 stays exactly 0.75 rather than its binary approximation.
            price_usd_per_hour=Decimal(str(spec["price_usd_per_hour"])),
            vcpus=int(spec["vcpus"]),
            memory_gib=int(spec["memory_gib"]),
            gpus=int(spec["gpus"]),
            gpu_description=str(spec["gpu_description"]),
        )
        for name, spec in document["instance_types"].items()
    }
    return LambdaCatalog(
        as_of=date.fromisoformat(document["as_of"]),
        source=str(document["source"]),
        instance_types=MappingProxyType(types),
        regions=MappingProxyType(dict(document["regions"])),
    )


@cache
def load_lambda_catalog(path: Path = CATALOG_PATH) -> LambdaCatalog:
    """The catalog, read once per process."""
    return _parse(json.loads(path.read_text(encoding="utf-8")))
