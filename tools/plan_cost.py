"""The plan's cost view: the cost model over the resources the harness collected."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy.deserialize import deserialize_properties

from costing import CostReport, estimate
from costing.autoscaling import PoolOutlook, outlook
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


def stack_cost(run: StackRun) -> CostReport:
    """Priced exactly as the budget policy prices them (same model, same deserialized inputs)."""
    return estimate(
        _Priced(r.urn, r.name, r.type, deserialize_properties(plaintext(dict(r.inputs))))
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
