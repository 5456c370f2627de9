"""Replace engine-shaped secret values with a marker (pure helper)."""

from __future__ import annotations

from typing import Any

from tools.harness import SECRET_SIG_KEY, SECRET_SIG_VALUE, UNKNOWN

REDACTED = "[secret]"
COMPUTED = "[computed]"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def redact(value: Any) -> Any:
    """A copy of `value` with every secret replaced by `[secret]` and unknowns by `[computed]`."""
    if is_secret(value):
        return REDACTED
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if value == UNKNOWN:
        return COMPUTED
    return value


def plaintext(value: Any) -> Any:
    """A copy with every secret unwrapped: what the engine hands policies."""
    if is_secret(value):
        return plaintext(value.get("value"))
    if isinstance(value, dict):
        return {key: plaintext(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plaintext(item) for item in value]
    return value
