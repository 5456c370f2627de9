"""The plan's cost view: the cost model over the resources the harness collected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy.deserialize import deserialize_properties

from policies.costing import CostReport, estimate
from tools.harness import StackRun
from tools.redact import plaintext


@dataclass(frozen=True)
class _Priced:
    urn: str
    name: str
    resource_type: str
    props: Mapping[str, Any]


def stack_cost(run: StackRun) -> CostReport:
    """Priced exactly as the budget policy prices them (same model, same deserialized inputs)."""
    return estimate(
        _Priced(r.urn, r.name, r.type, deserialize_properties(plaintext(dict(r.inputs))))
        for r in run.resources
        if r.custom
    )
