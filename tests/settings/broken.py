"""Valid stack configs with one property broken, and the check every settings test makes of the error."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, parse_settings
from tests.helpers import decoded, stack_config, with_value

Broken = tuple[str, str, Any, str]
"""(case, config key set, its broken value, the key the error must name)."""


def pools(**changes: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = decoded(stack_config(), "sophia:gpuPools")
    result[0].update(changes)
    return result


def data_layer(store: str, **changes: Any) -> dict[str, Any]:
    layer: dict[str, Any] = decoded(stack_config(), "sophia:dataLayer")
    layer[store].update(changes)
    return layer


def backups(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = decoded(stack_config(), "sophia:backups") | changes
    return {k: v for k, v in result.items() if v is not None}


def monitoring(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = decoded(stack_config(), "sophia:monitoring") | changes
    return result


ACCESS: dict[str, Any] = {"sshPublicKey": "ssh-ed25519 AAAAC3Nza ops", "sshAllowedCidrs": ["203.0.113.0/24"]}
DR: dict[str, Any] = decoded(stack_config("dr"), "sophia:dr")
FAILOVER: dict[str, Any] = DR["failover"]


def assert_rejected(key: str, value: Any, expected_key: str, stack: str = "prod") -> str:
    """Setting `key` to `value` fails with one one-line error naming exactly `expected_key`."""
    with pytest.raises(SettingsError) as caught:
        parse_settings(with_value(stack_config(stack), key, value))
    assert caught.value.keys == (expected_key,), str(caught.value)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid stack config: " + expected_key + ": ")
    return message
