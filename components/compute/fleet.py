"""`GpuFleet`: launches every pool's recorded instances and waits until all of them are active."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.compute.gpu_pool import GpuPool
from providers.lambda_cloud.resources import LambdaFleet, LambdaFleetArgs


@dataclass(frozen=True)
class GpuFleetArgs:
    """Inputs of `GpuFleet`."""

    pools: Sequence[GpuPool]
    """Every pool of the stack: one fleet launches them all, one launch slot at a time."""


class GpuFleet(pulumi.ComponentResource):
    """One `LambdaFleet` for all pools, so a bring-up holds one provider-host thread, not one per pool."""

    instances: pulumi.Output[dict[str, dict[str, Any]]]
    """Launch key -> live instance (`instance_id`, `name`, `region`, `status`, `ip`, `pool`, ...)."""

    def __init__(self, name: str, args: GpuFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:compute:GpuFleet", name, None, opts)
        records = [instance for pool in args.pools for instance in pool.instances]
        self.fleet = LambdaFleet(
            f"{name}-instances",
            LambdaFleetArgs(members=[member for pool in args.pools for member in pool.members]),
            pulumi.ResourceOptions(parent=self, depends_on=records),
        )
        self.instances = self.fleet.instances
        self.register_outputs({"instances": self.instances})

    def pool_instances(self, pool: str) -> pulumi.Output[list[dict[str, Any]]]:
        """The pool's live instances, in index order (`<pool>-0`, `<pool>-1`, ...)."""
        return self.instances.apply(lambda instances: _of_pool(instances, pool))


def _of_pool(instances: dict[str, dict[str, Any]] | None, pool: str) -> list[dict[str, Any]]:
    members = [i for i in (instances or {}).values() if i.get("pool") == pool]
    return sorted(members, key=lambda i: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(i.get("name")))])
