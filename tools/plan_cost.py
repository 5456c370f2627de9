"""The plan's cost view: the cost model over the resources the harness collected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from policies.costing import CostReport, estimate
from tools.harness import StackRun
from tools.redact import plaintext


@dataclass(frozen=True)
class _Priced:
    urn: str
    name: str
    resource_type: str
    props: Mapping[str, Any]
    property_dependencies: Mapping[str, Sequence[str]]


def stack_cost(run: StackRun) -> CostReport:
    """Priced exactly as the budget policy prices them: the same model, over the properties as the pack
    reads them (deserialized, unknowns raising through the unknown-checking proxy)."""
    return estimate(
        _Priced(
            r.urn,
            r.name,
            r.type,
            unknown_checking_proxy(deserialize_properties(plaintext(dict(r.inputs)))),
            r.property_dependencies,
        )
        for r in run.resources
        if r.custom
    )
