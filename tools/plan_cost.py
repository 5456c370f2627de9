"""The plan's cost view: the cost model over the resources the harness collected."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from policies.costing import CostReport, estimate
from policies.costing.autoscaling import PoolOutlook, outlook
from tools.harness import StackRun
from tools.redact import plaintext

# The node-group service's pools document (components/compute/autoscaler.py renders it).
POOLS_CONFIG_MAP = ("kubernetes:core/v1:ConfigMap", "lambda-node-groups-pools", "pools.json")


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


def autoscaling_outlook(run: StackRun) -> list[PoolOutlook]:
    """Floor, expected burst and off-hours saving of each autoscaled pool; empty without the autoscaler."""
    kind, name, key = POOLS_CONFIG_MAP
    for resource in run.by_type(kind):
        inputs = plaintext(dict(resource.inputs))
        if (inputs.get("metadata") or {}).get("name") == name:
            return outlook(json.loads(inputs["data"][key]))
    return []
