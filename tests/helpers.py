"""Shared test helpers: valid configs to break one property of."""

from __future__ import annotations

import json
from typing import Any

from tools.harness import read_stack_file


def stack_config(stack: str = "prod") -> dict[str, str]:
    """The engine's config map for a shipped stack file."""
    config, _ = read_stack_file(stack)
    return config


def decoded(config: dict[str, str], key: str) -> Any:
    return json.loads(config[key])


def with_value(config: dict[str, str], key: str, value: Any) -> dict[str, str]:
    """A copy of `config` with `key` set (structured values JSON-encoded as the engine sends them)."""
    updated = dict(config)
    updated[key] = value if isinstance(value, str) else json.dumps(value)
    return updated
