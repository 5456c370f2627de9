"""Reading engine-shaped values: unknowns (preview) made explicit, lists and maps tolerated in any shape.

Properties reach the pack wrapped in pulumi-policy's unknown-checking proxy: reading a value the
engine does not know yet raises `UnknownValueError`. A model records such a value as `Unknown`
rather than failing whole, so a rule can judge everything else and name what it could not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from pulumi_policy.proxy import UnknownValueError

T = TypeVar("T")
EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Unknown:
    """A value the engine cannot know yet (it depends on a resource not created)."""

    where: str
    """The property path, e.g. `spec.template.spec.containers.0.image`."""


class Undetermined(Exception):  # noqa: N818 - a verdict, not an error
    """A rule cannot judge a resource because a value it needs is unknown."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where or 'a value'} can't be known during preview")
        self.where = where


def unknown_of(error: UnknownValueError) -> Unknown:
    return Unknown(".".join(error.props))


def read(fn: Callable[[], T]) -> T | Unknown:
    """`fn()`, or `Unknown` when it meets a value the engine does not know yet."""
    try:
        return fn()
    except UnknownValueError as error:
        return unknown_of(error)


def need(value: T | Unknown) -> T:
    """The value, or `Undetermined` for the rule's caller to report."""
    if isinstance(value, Unknown):
        raise Undetermined(value.where)
    return value


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a map, else an empty one (a string `metadata`, a missing block)."""
    return value if isinstance(value, Mapping) else EMPTY


def items(value: Any) -> Sequence[Any]:
    """`value` if it is a list (the proxy's or a plain one), else an empty list; never a string's characters."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value
    return ()


def one_or_many(value: Any) -> list[Any]:
    """IAM-style fields: a single value or a list of them."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def dig(node: Any, *keys: str) -> Any:
    """Walk maps by key; None where a key is missing or a node is not a map. Unknowns raise."""
    for key in keys:
        node = mapping(node).get(key)
        if node is None:
            return None
    return node


def flag(value: Any) -> bool | None:
    """A boolean as the engine may send it: true/false or their strings (launch templates)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def json_document(value: Any) -> Any:
    """A JSON document given as text (IAM policies, provider config) or already as an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def is_set(fn: Callable[[], Any]) -> bool:
    """Whether `fn()` gives a value; an unknown one counts (it is set to an output not known yet)."""
    value = read(fn)
    return isinstance(value, Unknown) or bool(value)


def read_key(node: Mapping[str, Any], key: str) -> Any:
    """`node.get(key)`, or `Unknown` when the engine does not know it yet."""
    return read(lambda: node.get(key))
