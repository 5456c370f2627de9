"""What a stack launches on Lambda Cloud: an instance record (`pulumi-python:dynamic/lambda:Instance`)
and each member of a fleet (`.../lambda:Fleet`, which does the launching) are the same thing, a
`Launch`; rules judge launches, whichever resource carries them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from policies.model.values import Unknown, items, mapping, read, text

LAMBDA_INSTANCE = "pulumi-python:dynamic/lambda:Instance"
LAMBDA_FLEET = "pulumi-python:dynamic/lambda:Fleet"
LAUNCH_TYPES = (LAMBDA_INSTANCE, LAMBDA_FLEET)


@dataclass(frozen=True)
class Launch:
    where: str
    """`instance` for a record, `member 2 (sophia-prod-ai-core-2)` for a fleet member."""
    name: str | None
    launch_key: str | None
    instance_type: Any
    region: Any
    fallback_regions: tuple[Any, ...]
    pool: str | None
    tags: Mapping[str, Any]
    ssh_key_names: tuple[Any, ...]
    firewall_ids: tuple[Any, ...] | Unknown | None
    """A record's ruleset ids (their regions are known only with the stack); None for a fleet member."""
    firewall_by_region: Mapping[str, tuple[Any, ...] | Unknown] | None
    """A fleet member's rulesets per region; None for a record."""

    @property
    def regions(self) -> list[Any]:
        return [self.region, *self.fallback_regions]


def _elements(node: Mapping[str, Any], key: str) -> tuple[Any, ...] | Unknown:
    """A list's elements, each `Unknown` where the engine does not know it (ruleset ids in a first preview)."""
    values = read(lambda: items(node.get(key)))
    if isinstance(values, Unknown):
        return values
    return tuple(read(partial(values.__getitem__, i)) for i in range(len(values)))


def _by_region(node: Mapping[str, Any]) -> dict[str, tuple[Any, ...] | Unknown]:
    rulesets = mapping(node.get("firewall_rulesets"))
    return {str(region): _elements(rulesets, region) for region in rulesets}


def _launch(where: str, node: Mapping[str, Any], member: bool) -> Launch:
    tags = mapping(node.get("tags"))
    pool = text(node.get("pool")) if member else None
    return Launch(
        where=where,
        name=text(node.get("name")),
        launch_key=text(read(lambda: node.get("launch_key"))),
        instance_type=node.get("instance_type"),
        region=node.get("region"),
        fallback_regions=tuple(items(node.get("fallback_regions"))),
        pool=pool or text(tags.get("pool")) or None,
        tags=tags,
        ssh_key_names=tuple(items(node.get("ssh_key_names"))),
        firewall_ids=None if member else _elements(node, "firewall_ruleset_ids"),
        firewall_by_region=_by_region(node) if member else None,
    )


def launches_of(resource_type: str, props: Mapping[str, Any]) -> tuple[Launch | Unknown, ...]:
    """The launches a record or a fleet carries; a member not known yet is `Unknown`."""
    if resource_type == LAMBDA_INSTANCE:
        return (read(partial(_launch, "instance", props, False)),)
    if resource_type != LAMBDA_FLEET:
        return ()
    members = read(lambda: items(props.get("members")))
    if isinstance(members, Unknown):
        return (members,)

    def member(index: int) -> Launch:
        node = mapping(members[index])
        return _launch(f"member {index} ({text(read(lambda: node.get('name'))) or '?'})", node, True)

    return tuple(read(partial(member, i)) for i in range(len(members)))
