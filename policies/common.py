"""Building blocks for the rules: what each rule states about itself, the verdict context it reports
through, and the pack-wide settings of the stack being checked.

Rules import only the standard library, `pulumi_policy` (and `pulumi`, its dependency) and the
pack's own packages: the Pulumi CLI runs the pack from `policies/` with its own virtualenv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
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
from pulumi_policy.proxy import UnknownValueError

from policies.model.lambda_cloud import Launch
from policies.model.subject import StackView, Subject
from policies.model.values import Undetermined, Unknown, json_document, mapping, unknown_of

ENVIRONMENTS = ("prod", "dr", "dev")
STRICT_ENVIRONMENTS = ("prod", "dr")
DEFAULT_DATA_NAMESPACES = ("sophia-data",)
DATA_TIER_LABEL = "sophia.ai/tier"


class Category(Enum):
    SECURITY = "security"
    BUDGET = "budget"
    HYGIENE = "hygiene"

    @property
    def default_level(self) -> EnforcementLevel:
        # Security and budget rules block a deployment; hygiene rules only warn.
        return EnforcementLevel.ADVISORY if self is Category.HYGIENE else EnforcementLevel.MANDATORY


@dataclass(frozen=True)
class PackSettings:
    """Facts about the stack every rule may need, from the `sophia-pack-stack-config` policy's config."""

    stack: str | None = None
    """The stack the config was written for; the analyzer refuses it for any other stack."""
    running_stack: str | None = None
    """The stack being run, when the analyzer knows it."""
    environment: str = "prod"
    """prod and dr get the strict rules; without a config, the strictest."""
    data_namespaces: tuple[str, ...] = DEFAULT_DATA_NAMESPACES
    service_namespaces: tuple[str, ...] = ()
    """Namespaces of the service fleet: every workload in them is a service (`rules/services.py`)."""
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    """Every policy's resolved config, for the few rules that share another's setting."""

    @property
    def strict(self) -> bool:
        return self.environment in STRICT_ENVIRONMENTS


Report = Callable[[str, str | None], None]


class Ctx:
    """Where a rule sends its verdicts: violations at the policy's level, undetermined ones as advisories."""

    def __init__(self, config: Mapping[str, Any], settings: PackSettings, report: Report, undetermined: Report) -> None:
        self.config = config
        self.settings = settings
        self._report = report
        self._undetermined = undetermined

    @property
    def strict(self) -> bool:
        return self.settings.strict

    def violation(self, message: str, urn: str | None = None) -> None:
        self._report(message, urn)

    def undetermined(self, message: str, urn: str | None = None) -> None:
        self._undetermined(message, urn)

    @contextmanager
    def judging(self, what: str) -> Iterator[None]:
        """Judge one part (a container, a statement): an unknown in it is reported, the rest still judged."""
        try:
            yield
        except Undetermined as unknown:
            self.undetermined(f"{what}: {unknown}")
        except UnknownValueError as error:
            self.undetermined(f"{what}: {Undetermined(unknown_of(error).where)}")

    def each_launch(self, subject: Subject, check: Callable[[Launch], None]) -> None:
        """Judge each Lambda launch a record or fleet carries on its own."""
        for launch in subject.launches:
            if isinstance(launch, Unknown):
                self.undetermined(f"{subject.name}: {Undetermined(launch.where)}")
                continue
            with self.judging(f"{subject.name} {launch.where}"):
                check(launch)

    def each(self, subjects: Iterable[Subject], check: Callable[[Subject], None]) -> None:
        """Judge each resource on its own: one that meets an unknown is reported, the others still judged."""
        for subject in subjects:
            try:
                check(subject)
            except Undetermined as unknown:
                self.undetermined(f"{subject.name}: {unknown}", subject.urn)
            except UnknownValueError as error:
                self.undetermined(f"{subject.name}: {Undetermined(unknown_of(error).where)}", subject.urn)


class RuleArgs(ResourceValidationArgs):
    """What the analyzer hands a resource rule: the SDK's arguments plus the shared subject."""

    def __init__(self, base: dict[str, Any], subject: Subject, settings: PackSettings, undetermined: Report) -> None:
        super().__init__(**base)
        self.subject = subject
        self.settings = settings
        self.undetermined = undetermined


class StackRuleArgs(StackValidationArgs):
    def __init__(self, base: dict[str, Any], view: StackView, settings: PackSettings, undetermined: Report) -> None:
        super().__init__(**base)
        self.view = view
        self.settings = settings
        self.undetermined = undetermined


ResourceCheck = Callable[[Subject, Ctx], None]
StackCheck = Callable[[StackView, Ctx], None]
Applies = Callable[[Subject], bool]


class GuardedResourcePolicy(ResourceValidationPolicy):
    """A resource policy that says which resources it judges, so the analyzer skips the rest cheaply."""

    def __init__(self, applies: Applies, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.applies = applies


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

    def defaults(self) -> dict[str, Any]:
        return {key: spec["default"] for key, spec in (self.config or {}).items() if "default" in spec}

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

    def _ctx(self, args: RuleArgs | StackRuleArgs, report: ReportViolation) -> Ctx:
        config = {**self.defaults(), **(args.get_config() or {})}
        return Ctx(config, args.settings, report, args.undetermined)

    def resource(self, applies: Iterable[str] | Applies, check: ResourceCheck) -> GuardedResourcePolicy:
        """A resource rule: runs before the resource is created or updated, so a violation blocks it."""
        if callable(applies):
            predicate: Applies = applies
        else:
            types = frozenset(applies)

            def predicate(subject: Subject) -> bool:
                return subject.resource_type in types

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if not isinstance(args, RuleArgs):
                raise TypeError(f"{self.name} runs under policies.analyzer.Analyzer, not the SDK's servicer")
            if not predicate(args.subject):
                return
            try:
                check(args.subject, self._ctx(args, report))
            except Undetermined as unknown:
                args.undetermined(str(unknown), args.subject.urn)

        return GuardedResourcePolicy(predicate, validate=validate, **self._common())

    def stack(self, check: StackCheck) -> StackValidationPolicy:
        """A stack rule: sees every resource (outputs, after deployment during `pulumi up`)."""

        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            if not isinstance(args, StackRuleArgs):
                raise TypeError(f"{self.name} runs under policies.analyzer.Analyzer, not the SDK's servicer")
            try:
                check(args.view, self._ctx(args, report))
            except Undetermined as unknown:
                args.undetermined(str(unknown), None)

        return StackValidationPolicy(validate=validate, **self._common())


def tags_of(subject: Subject) -> dict[str, str]:
    """Resource tags merged over the explicit provider's `default_tags`, as AWS applies them."""
    merged: dict[str, str] = {}
    default_tags = mapping(json_document(subject.provider_props.get("defaultTags")))
    merged.update({str(k): str(v) for k, v in mapping(default_tags.get("tags")).items()})
    merged.update({str(k): str(v) for k, v in mapping(subject.get("tags")).items()})
    return merged
