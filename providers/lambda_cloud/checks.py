"""Input constraints from the Lambda OpenAPI document, checked before any API call (pure).

During a preview the engine hands Check the outputs of resources not created yet as unknowns: a
whole value (`pulumi.output.Unknown`) or an element of a list. Every check judges what is known
and lets unknowns through; the engine checks again with the real values before creating.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown

NAME_MAX = 64
HOSTNAME = re.compile(r"^[a-z0-9][0-9a-z-]{0,62}$")
TAG_KEY = re.compile(r"^[a-z][a-z0-9-:]+$")
TAG_KEY_MAX = 55
TAG_VALUE_MAX = 128
USER_DATA_MAX_BYTES = 1_000_000  # "cannot exceed 1MB": the decimal reading, the stricter one
FILESYSTEM_NAME = re.compile(r"^[a-zA-Z]+[0-9a-zA-Z-]*$")
SSH_KEY_NAME_MAX = 64
RULE_DESCRIPTION_MAX = 128
PROTOCOLS = ("tcp", "udp", "icmp", "all")

Failures = list[tuple[str, str]]
# The wire form of an unknown, should one reach a provider method undecoded.
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def is_unknown(value: Any) -> bool:
    """An input whose value the engine does not know yet (preview only)."""
    return isinstance(value, Unknown) or value == UNKNOWN_SENTINEL


def has_unknowns(value: Any) -> bool:
    """True when `value` or anything inside it is unknown."""
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(has_unknowns(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknowns(v) for v in value)
    return False


def _str_list(props: Mapping[str, Any], key: str, failures: Failures) -> list[Any] | None:
    """The list at `key` (unknown elements kept), or None when the whole list is unknown."""
    value = props.get(key) or []
    if is_unknown(value):
        return None
    if not isinstance(value, list) or not all(is_unknown(v) or (isinstance(v, str) and v) for v in value):
        failures.append((key, "must be a list of non-empty strings"))
        return []
    return value


def _known_str(props: Mapping[str, Any], key: str) -> bool:
    """A non-empty string, or unknown (which the engine checks again once known)."""
    value = props.get(key)
    return is_unknown(value) or (isinstance(value, str) and bool(value))


def check_instance(props: Mapping[str, Any]) -> Failures:
    failures: Failures = []
    name = props.get("name")
    if not is_unknown(name) and (not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX):
        failures.append(("name", f"must be 1-{NAME_MAX} characters"))
    hostname = props.get("hostname")
    if (
        hostname is not None
        and not is_unknown(hostname)
        and (not isinstance(hostname, str) or not HOSTNAME.match(hostname))
    ):
        failures.append(("hostname", "must match ^[a-z0-9][0-9a-z-]{0,62}$ (lowercase letters, digits, dashes)"))
    for key in ("instance_type", "region"):
        if not _known_str(props, key):
            failures.append((key, "is required"))
    ssh_keys = _str_list(props, "ssh_key_names", failures)
    if ssh_keys is not None and len(ssh_keys) != 1:
        failures.append(
            ("ssh_key_names", f"must name exactly one SSH key (the API launches with one), got {len(ssh_keys)}")
        )
    fallbacks = _str_list(props, "fallback_regions", failures) or []
    if not is_unknown(props.get("region")) and props.get("region") in fallbacks:
        failures.append(("fallback_regions", "must not repeat region"))
    _str_list(props, "file_system_names", failures)
    _str_list(props, "firewall_ruleset_ids", failures)
    user_data = props.get("user_data")
    if user_data is not None and not is_unknown(user_data):
        if not isinstance(user_data, str):
            failures.append(("user_data", "must be a string"))
        elif len(user_data.encode()) > USER_DATA_MAX_BYTES:
            failures.append(
                ("user_data", f"must not exceed 1 MB ({USER_DATA_MAX_BYTES} bytes), got {len(user_data.encode())}")
            )
    image = props.get("image")
    well_formed = isinstance(image, dict) and len(image) == 1 and set(image) <= {"id", "family"}
    if image is not None and not has_unknowns(image) and not well_formed:
        failures.append(("image", 'must be {"id": ...} or {"family": ...}'))
    failures.extend(check_tags(props.get("tags")))
    return failures


def check_tags(tags: Any) -> Failures:
    if tags is None or is_unknown(tags):
        return []
    if not isinstance(tags, dict):
        return [("tags", "must be a map of key to value")]
    failures: Failures = []
    for key, value in tags.items():
        if not isinstance(key, str) or len(key) > TAG_KEY_MAX or not TAG_KEY.match(key):
            failures.append(
                (f"tags.{key}", f"key must match ^[a-z][a-z0-9-:]+$ and be at most {TAG_KEY_MAX} characters")
            )
        if not is_unknown(value) and (not isinstance(value, str) or len(value) > TAG_VALUE_MAX):
            failures.append((f"tags.{key}", f"value must be a string of at most {TAG_VALUE_MAX} characters"))
    return failures


def check_ssh_key(props: Mapping[str, Any]) -> Failures:
    failures: Failures = []
    name = props.get("name")
    if not is_unknown(name) and (not isinstance(name, str) or not 1 <= len(name) <= SSH_KEY_NAME_MAX):
        failures.append(("name", f"must be 1-{SSH_KEY_NAME_MAX} characters"))
    public_key = props.get("public_key")
    if is_unknown(public_key):
        pass
    elif not isinstance(public_key, str) or not 1 <= len(public_key) <= 4096:
        failures.append(("public_key", "must be an OpenSSH public key of at most 4096 characters"))
    elif not public_key.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
        failures.append(("public_key", "must be an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)"))
    return failures


def check_ruleset(props: Mapping[str, Any]) -> Failures:
    failures: Failures = []
    name = props.get("name")
    if not is_unknown(name) and (not isinstance(name, str) or not 1 <= len(name) <= 64):
        failures.append(("name", "must be 1-64 characters"))
    if not _known_str(props, "region"):
        failures.append(("region", "is required"))
    rules = props.get("rules")
    if is_unknown(rules):
        return failures
    if not isinstance(rules, list):
        return [*failures, ("rules", "must be a list")]
    for i, rule in enumerate(rules):
        failures.extend((f"rules[{i}].{k}", m) for k, m in _check_rule(rule))
    return failures


def _check_rule(rule: Any) -> Failures:
    if is_unknown(rule):
        return []
    if not isinstance(rule, dict):
        return [("", "must be a map")]
    failures: Failures = []
    protocol = rule.get("protocol")
    if protocol not in PROTOCOLS:
        failures.append(("protocol", f"must be one of {', '.join(PROTOCOLS)}"))
    port_range = rule.get("port_range")
    if has_unknowns(port_range):
        pass
    elif protocol == "icmp":
        if port_range is not None:
            failures.append(("port_range", "is not allowed for icmp"))
    elif not (
        isinstance(port_range, list)
        and len(port_range) == 2
        and all(_port(p) is not None for p in port_range)
        and _port(port_range[0]) <= _port(port_range[1])  # type: ignore[operator]
    ):
        failures.append(("port_range", "must be [min, max] with 1 <= min <= max <= 65535"))
    source = rule.get("source_network")
    try:
        if not is_unknown(source):
            ipaddress.IPv4Network(str(source), strict=False)
    except ValueError:
        failures.append(("source_network", "must be an IPv4 CIDR such as 203.0.113.0/24"))
    description = rule.get("description")
    if not is_unknown(description) and (not isinstance(description, str) or len(description) > RULE_DESCRIPTION_MAX):
        failures.append(("description", f"must be a string of at most {RULE_DESCRIPTION_MAX} characters"))
    return failures


def check_filesystem(props: Mapping[str, Any]) -> Failures:
    failures: Failures = []
    name = props.get("name")
    if not is_unknown(name) and (not isinstance(name, str) or len(name) > 60 or not FILESYSTEM_NAME.match(name)):
        failures.append(("name", "must be 1-60 characters, letters first, then letters, digits or dashes"))
    if not _known_str(props, "region"):
        failures.append(("region", "is required"))
    return failures


def _port(value: Any) -> int | None:
    """The engine sends numbers as floats: 22.0 is port 22, 22.5 is no port."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return None
    port = int(value)
    return port if 1 <= port <= 65535 else None


def api_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as the API takes them: integer ports (inputs arrive from the engine as floats)."""
    result = []
    for rule in rules:
        converted = dict(rule)
        if converted.get("port_range") is not None:
            converted["port_range"] = [int(p) for p in converted["port_range"]]
        result.append(converted)
    return result
