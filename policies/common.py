"""Building blocks for the rules: metadata, enforcement defaults and config handling.

Rules import only the standard library, `pulumi_policy` and the project's stdlib-only
`catalog` and `costing` packages: the Pulumi CLI runs the pack in its own virtualenv.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

ENVIRONMENTS = ("prod", "dr", "dev")
ENVIRONMENT_PROPERTY = {
    "environment": {
        "type": "string",
        "enum": list(ENVIRONMENTS),
        "default": "prod",
        "description": "Stack environment; prod and dr get the strict rules. Defaults to the strictest.",
    }
}


class Category(Enum):
    SECURITY = "security"
    BUDGET = "budget"
    HYGIENE = "hygiene"

    @property
    def default_level(self) -> EnforcementLevel:
        # Security and budget rules block a deployment; hygiene rules only warn.
        return EnforcementLevel.ADVISORY if self is Category.HYGIENE else EnforcementLevel.MANDATORY


@dataclass(frozen=True)
class Rule:
    """What every policy states about itself."""

    name: str
    """`<vendor>-<service>-<resource>-<rule>`, e.g. `aws-rds-instance-encrypted`."""
    description: str
    severity: Severity
    remediation: str
    category: Category
    config: Mapping[str, Any] | None = None
    """JSON-schema properties of the policy's config (with defaults)."""
    required: tuple[str, ...] = ()

    def _schema(self) -> PolicyConfigSchema | None:
        if not self.config:
            return None
        return PolicyConfigSchema(properties=dict(self.config), required=list(self.required) or None)

    def _common(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "enforcement_level": self.category.default_level,
            "config_schema": self._schema(),
            "severity": self.severity,
            "remediation_steps": self.remediation,
            "tags": [self.category.value],
        }


ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]


def resource_policy(rule: Rule, types: Iterable[str], check: ResourceCheck) -> ResourceValidationPolicy:
    """A resource policy that runs `check` only for the given resource types."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in wanted:
            check(args, report)

    return ResourceValidationPolicy(validate=validate, **rule._common())


def stack_policy(rule: Rule, check: StackCheck) -> StackValidationPolicy:
    return StackValidationPolicy(validate=check, **rule._common())


def config_of(args: ResourceValidationArgs | StackValidationArgs, rule: Rule) -> dict[str, Any]:
    """The policy's config; schema defaults fill what the engine did not send."""
    values = {key: spec["default"] for key, spec in (rule.config or {}).items() if "default" in spec}
    values.update(args.get_config() or {})
    return values


def strict_environment(args: ResourceValidationArgs | StackValidationArgs, rule: Rule) -> bool:
    return config_of(args, rule).get("environment", "prod") in ("prod", "dr")


def json_value(value: Any) -> Any:
    """Provider config arrives as JSON text (e.g. the AWS provider's `defaultTags`)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def tags_of(args: ResourceValidationArgs) -> dict[str, str]:
    """Resource tags merged over the explicit provider's `default_tags`, as AWS applies them."""
    merged: dict[str, str] = {}
    if args.provider is not None:
        default_tags = json_value(args.provider.props.get("defaultTags")) or {}
        if isinstance(default_tags, Mapping):
            merged.update({str(k): str(v) for k, v in (default_tags.get("tags") or {}).items()})
    merged.update({str(k): str(v) for k, v in (args.props.get("tags") or {}).items()})
    return merged


# Ports of the platform's data stores: PostgreSQL, Qdrant (HTTP, gRPC, p2p), Redis and its cluster bus.
DATA_PORTS: tuple[tuple[int, int], ...] = ((5432, 5432), (6333, 6335), (6379, 6379), (16379, 16379))


def ranges_opened(low: float, high: float, ranges: Iterable[tuple[int, int]]) -> list[str]:
    """Which of `ranges` the inclusive port range [low, high] touches, as '5432' or '6333-6335'."""
    return [
        f"{first}" if first == last else f"{first}-{last}" for first, last in ranges if low <= last and high >= first
    ]


def as_list(value: Any) -> list[Any]:
    """Lists reach rules as the engine proxy's Sequence, not `list`: treat any non-string sequence as one."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
