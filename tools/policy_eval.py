"""Evaluate the policy pack in-process, feeding it exactly what the engine would.

The pack's own analyzer (`policies.analyzer.Analyzer`, the servicer `policies/__main__.py` serves)
receives the engine's protobuf requests: `ConfigureAnalyzerRequest` with every policy's enforcement
level and config (schema defaults applied, validated against the schema, as the CLI does), then an
`AnalyzeRequest` per custom resource and one `AnalyzeStackRequest`. It deserializes the properties
and wraps them in the unknown-checking proxy itself. The stack's name stands in for the
`PULUMI_STACK` the CLI's policy proxy sets, so a config written for another stack is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2
from jsonschema import Draft7Validator
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, Policy

from policies.analyzer import PackConfigError
from policies.pack import PACK_ENFORCEMENT, all_policies, analyzer
from tools.harness import RegisteredResource, StackRun
from tools.redact import plaintext

POLICY_CONFIG_DIR = Path(__file__).resolve().parent.parent / "policies" / "config"
LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
SEVERITIES = {
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}
_PROTO_LEVELS = {
    EnforcementLevel.ADVISORY: analyzer_pb2.ADVISORY,
    EnforcementLevel.MANDATORY: analyzer_pb2.MANDATORY,
    EnforcementLevel.REMEDIATE: analyzer_pb2.REMEDIATE,
    EnforcementLevel.DISABLED: analyzer_pb2.DISABLED,
}
DYNAMIC_DEFAULT_PROVIDER = "pulumi:providers:pulumi-python"
UNEXPANDED = "(harness)"
"""The `skipped` entry for a remote component whose children the harness could not expand offline."""


class PolicyConfigError(ValueError):
    """The policy config file is unreadable or does not fit a policy's schema."""


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    severity: str
    message: str
    urn: str | None
    remediation: str

    @property
    def resource_name(self) -> str | None:
        return self.urn.rsplit("::", 1)[-1] if self.urn else None


@dataclass(frozen=True)
class Evaluation:
    violations: tuple[Violation, ...]
    skipped: tuple[tuple[str, str], ...]
    """(policy, reason): could not judge a resource during preview (an unknown value, the reason names
    the resource) or not applicable."""

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.level == "mandatory")


def load_policy_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyConfigError(f"cannot read policy config {path}: {error.strerror}") from None
    except ValueError as error:
        raise PolicyConfigError(f"policy config {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PolicyConfigError(f"policy config {path} must be a JSON object keyed by policy name")
    return document


def _level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(f"{where}: enforcement level must be one of {allowed}, got {value!r}") from None


def engine_config(
    policies: Iterable[Policy], user_config: Mapping[str, Any]
) -> dict[str, tuple[EnforcementLevel, dict[str, Any]]]:
    """Each policy's level and config as the CLI computes them from a `--policy-pack-config` file."""
    policies = list(policies)
    known = {p.name for p in policies}
    unknown = sorted(set(user_config) - known - {"all"})
    if unknown:
        raise PolicyConfigError(f"policy config names unknown policies: {', '.join(unknown)}")
    everything = _level(user_config["all"], "all") if "all" in user_config else None
    resolved: dict[str, tuple[EnforcementLevel, dict[str, Any]]] = {}
    for policy in policies:
        entry = user_config.get(policy.name)
        schema = policy.config_schema
        properties = dict(schema.properties) if schema and schema.properties else {}
        values = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
        level = everything or policy.enforcement_level or PACK_ENFORCEMENT
        if isinstance(entry, str):
            level = _level(entry, policy.name)
        elif isinstance(entry, dict):
            entry = dict(entry)
            if "enforcementLevel" in entry:
                level = _level(entry.pop("enforcementLevel"), f"{policy.name}.enforcementLevel")
            values.update(entry)
        elif entry is not None:
            raise PolicyConfigError(f"{policy.name}: config must be an enforcement level or an object")
        json_schema = {
            "type": "object",
            "properties": properties,
            "required": list(schema.required or []) if schema else [],
            "additionalProperties": False,
        }
        errors = sorted(Draft7Validator(json_schema).iter_errors(values), key=lambda e: list(e.path))
        if errors and level is not EnforcementLevel.DISABLED:
            error = errors[0]
            where = ".".join([policy.name, *map(str, error.path)])
            raise PolicyConfigError(f"policy config {where}: {error.message}")
        resolved[policy.name] = (level, values)
    return resolved


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(plaintext(dict(props)), struct_pb2.Struct())


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def _seconds(duration: str) -> float:
    factor = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * factor[u] for n, u in _DURATION.findall(duration))


def _options(resource: RegisteredResource) -> analyzer_pb2.AnalyzerResourceOptions:
    create, update, delete = resource.custom_timeouts
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect,
        ignoreChanges=list(resource.ignore_changes),
        deleteBeforeReplace=resource.delete_before_replace,
        deleteBeforeReplaceDefined=resource.delete_before_replace_defined,
        additionalSecretOutputs=list(resource.additional_secret_outputs),
        parent=resource.parent or "",
    )
    if any(resource.custom_timeouts):
        options.customTimeouts.create = _seconds(create)
        options.customTimeouts.update = _seconds(update)
        options.customTimeouts.delete = _seconds(delete)
    return options


class _Providers:
    def __init__(self, run: StackRun) -> None:
        self._by_urn = {r.urn: r for r in run.resources if r.type.startswith("pulumi:providers:")}
        self._stack, self._project = run.stack, run.project

    def of(self, resource: RegisteredResource) -> analyzer_pb2.AnalyzerProviderResource | None:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            return None
        if resource.provider:
            urn = resource.provider.rsplit("::", 1)[0]
            provider = self._by_urn.get(urn)
            if provider is not None:
                return analyzer_pb2.AnalyzerProviderResource(
                    type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
                )
        # No explicit provider: the engine's default one for the package.
        package = resource.type.split(":", 1)[0]
        type_ = DYNAMIC_DEFAULT_PROVIDER if package == "pulumi-python" else f"pulumi:providers:{package}"
        urn = f"urn:pulumi:{self._stack}::{self._project}::{type_}::default"
        return analyzer_pb2.AnalyzerProviderResource(type=type_, urn=urn, name="default")


def evaluate(run: StackRun, user_config: Mapping[str, Any], policies: list[Policy] | None = None) -> Evaluation:
    policies = policies if policies is not None else all_policies()
    resolved = engine_config(policies, user_config)
    servicer = analyzer(policies, stack=run.stack)
    configure = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, values) in resolved.items():
        configure.policyConfig[name].enforcementLevel = _PROTO_LEVELS[level]
        configure.policyConfig[name].properties.CopyFrom(_struct(values))
    try:
        servicer.Configure(configure, None)
    except PackConfigError as error:
        raise PolicyConfigError(str(error)) from None

    remediation = {p.name: p.remediation_steps or "" for p in policies}
    providers = _Providers(run)
    violations: list[Violation] = []
    skipped: list[tuple[str, str]] = []

    def collect(response: analyzer_pb2.AnalyzeResponse, default_urn: str | None) -> None:
        for d in response.diagnostics:
            level = LEVELS.get(d.enforcementLevel, "advisory")
            if d.message.startswith(f"can't run policy '{d.policyName}'"):
                name = (d.urn or default_urn or "").rsplit("::", 1)[-1]
                reason = d.message.split(" during preview: ", 1)[-1]
                if name and not reason.startswith(f"{name}:"):
                    reason = f"{name}: {reason}"
                skipped.append((d.policyName, reason))
                continue
            detail = d.message.split("\n", 1)[1] if "\n" in d.message else d.message
            violations.append(
                Violation(
                    d.policyName,
                    level,
                    SEVERITIES.get(d.severity, "unspecified"),
                    detail,
                    d.urn or default_urn,
                    remediation.get(d.policyName, ""),
                )
            )
        skipped.extend((n.policy_name, n.reason) for n in response.not_applicable if n.reason)

    analyzed = []
    for resource in run.resources:
        provider = providers.of(resource)
        options = _options(resource)
        properties = _struct(resource.inputs)
        if resource.custom:
            request = analyzer_pb2.AnalyzeRequest(
                type=resource.type, properties=properties, urn=resource.urn, name=resource.name, options=options
            )
            if provider is not None:
                request.provider.CopyFrom(provider)
            collect(servicer.Analyze(request, None), resource.urn)
        # Stack policies see the engine's state: the outputs (unknown where a first preview cannot know them).
        item = analyzer_pb2.AnalyzerResource(
            type=resource.type,
            properties=_struct(resource.state),
            urn=resource.urn,
            name=resource.name,
            options=options,
            parent=resource.parent or "",
            dependencies=list(resource.depends_on),
        )
        if provider is not None:
            item.provider.CopyFrom(provider)
        for key, urns in resource.property_dependencies.items():
            item.propertyDependencies[key].urns.extend(urns)
        analyzed.append(item)
    stack_request = analyzer_pb2.AnalyzeStackRequest(resources=analyzed)
    collect(servicer.AnalyzeStack(stack_request, None), None)
    for urn, why in run.unexpanded:
        # The engine would analyze these children; the harness could not produce them: say so.
        skipped.append((UNEXPANDED, f"{urn.rsplit('::', 1)[-1]}: its children were not analyzed: {why}"))
    return Evaluation(tuple(violations), tuple(skipped))
