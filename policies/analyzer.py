"""The analyzer the Pulumi CLI talks to: pulumi-policy's servicer, with each request deserialized once.

pulumi-policy's own servicer deserializes a resource's properties (and its provider's) once per
policy, and every resource of the stack once per stack policy: with some sixty policies that is
most of the pack's time. This one deserializes each request once, builds one `Subject` per resource
(its normalized models computed on first use and shared by every rule), and otherwise keeps the
SDK's behaviour: enforcement levels from config, `remediate` reported as mandatory, not-applicable
answers, and the SDK's "can't run policy ... during preview" advisory for what a rule cannot judge,
now per resource and naming it.

It also binds the config to the stack: `Configure` refuses a config that names another stack.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from inspect import isawaitable
from types import MappingProxyType
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _GRPC_CHANNEL_OPTIONS, _NotApplicableError, _PolicyAnalyzerServicer
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.common import (
    DEFAULT_DATA_NAMESPACES,
    ENVIRONMENTS,
    GuardedResourcePolicy,
    PackSettings,
    Report,
    RuleArgs,
    StackRuleArgs,
)
from policies.model.subject import StackView, Subject

STACK_CONFIG_POLICY = "sophia-pack-stack-config"


class PackConfigError(ValueError):
    """The policy config does not belong to the stack being run."""


def running_stack() -> str | None:
    """The stack the CLI runs the pack for (`PULUMI_STACK`, set by its policy proxy), short name."""
    stack = os.environ.get("PULUMI_STACK")
    return stack.rsplit("/", 1)[-1] if stack else None


def settings_from(configs: Mapping[str, Mapping[str, Any]], stack: str | None) -> PackSettings:
    """The pack settings of a resolved config, refused when it names another stack than `stack`."""
    own = configs.get(STACK_CONFIG_POLICY) or {}
    named = own.get("stack")
    environment = str(own.get("environment", "prod"))
    if environment not in ENVIRONMENTS:
        raise PackConfigError(f"{STACK_CONFIG_POLICY}.environment must be one of {', '.join(ENVIRONMENTS)}")
    if named is not None:
        if stack is None:
            raise PackConfigError(
                f"the policy config is for stack {named!r} but the running stack is unknown (PULUMI_STACK unset)"
            )
        if str(named) != stack:
            raise PackConfigError(
                f"the policy config is for stack {named!r}, not {stack!r}: "
                f"use policies/config/{stack}.json (its {STACK_CONFIG_POLICY}.stack names the stack)"
            )
    namespaces = tuple(str(n) for n in own.get("dataNamespaces", DEFAULT_DATA_NAMESPACES))
    return PackSettings(
        stack=str(named) if named is not None else None,
        running_stack=stack,
        environment=environment,
        data_namespaces=namespaces,
        service_namespaces=tuple(str(n) for n in own.get("serviceNamespaces", ())),
        configs=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in configs.items()}),
    )


def _defaults(policy: Policy) -> dict[str, Any]:
    schema = policy.config_schema
    properties = schema.properties if schema is not None and schema.properties else {}
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def _run(result: Any) -> None:
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


class Analyzer(_PolicyAnalyzerServicer):
    """The pack's gRPC analyzer (see the module docstring)."""

    def __init__(
        self,
        name: str,
        version: str,
        policies: Sequence[Policy],
        enforcement_level: EnforcementLevel,
        *,
        description: str | None = None,
        stack: str | None = None,
    ) -> None:
        super().__init__(name, version, list(policies), enforcement_level, None, description)
        self._name, self._version = name, version
        self._policies = list(policies)
        self._stack = stack
        self._stack_tags: Mapping[str, str] = MappingProxyType({})
        self._configs: dict[str, Mapping[str, Any]] = {p.name: _defaults(p) for p in self._policies}
        self._settings = settings_from(self._configs, stack)

    @property
    def settings(self) -> PackSettings:
        return self._settings

    # -- configuration --------------------------------------------------------------------------

    def Configure(self, request: Any, context: Any) -> empty_pb2.Empty:  # noqa: N802 - gRPC method
        super().Configure(request, context)  # type: ignore[no-untyped-call]
        configs: dict[str, Mapping[str, Any]] = {p.name: _defaults(p) for p in self._policies}
        for name in request.policyConfig:
            configs.setdefault(name, {})
            configs[name] = {**configs[name], **json_format.MessageToDict(request.policyConfig[name].properties)}
        try:
            self._settings = settings_from(configs, self._stack or running_stack())
        except PackConfigError as error:
            if context is not None:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise
        self._configs = configs
        return empty_pb2.Empty()

    def ConfigureStack(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method
        self._stack_tags = MappingProxyType(dict(request.tags))
        return super().ConfigureStack(request, context)

    # -- reporting ------------------------------------------------------------------------------

    def _undetermined(self, response: Any, policy: Policy) -> Report:
        def report(message: str, urn: str | None = None) -> None:
            response.diagnostics.append(
                proto.AnalyzeDiagnostic(
                    policyName=policy.name,
                    policyPackName=self._name,
                    policyPackVersion=self._version,
                    message=(
                        f"can't run policy '{policy.name}' from policy pack '{self._name}@v{self._version}' "
                        f"during preview: {message}"
                    ),
                    urn=urn or "",
                    description=policy.description,
                    enforcementLevel=self._map_enforcement_level(EnforcementLevel.ADVISORY),
                )
            )

        return report

    def _level(self, policy: Policy) -> EnforcementLevel | None:
        level = self._get_enforcement_level(policy)
        if level == EnforcementLevel.DISABLED:
            return None
        # A violation that remediation did not fix is reported as mandatory (as the SDK does).
        return EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level

    def _props(self, struct: Any) -> Mapping[str, Any]:
        props: Mapping[str, Any] = unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))
        return props

    # -- analysis -------------------------------------------------------------------------------

    def Analyze(self, request: Any, _context: Any) -> Any:  # noqa: N802 - gRPC method
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        subject = Subject(
            request.type,
            request.urn,
            request.name,
            self._props(request.properties),
            self._get_resource_options(request),
            self._get_provider_resource(request),
        )
        for policy in self._policies:
            if not isinstance(policy, ResourceValidationPolicy):
                continue
            level = self._level(policy)
            if level is None or (isinstance(policy, GuardedResourcePolicy) and not policy.applies(subject)):
                continue
            if not policy.has_validation():
                response.not_applicable.append(
                    proto.PolicyNotApplicable(policy_name=policy.name, reason="Policy does not implement validate")
                )
                continue
            report = self._create_report_violation(response, policy.name, policy.description, level, policy.severity)
            undetermined = self._undetermined(response, policy)
            base = {
                "resource_type": request.type,
                "props": subject.props,
                "urn": request.urn,
                "name": request.name,
                "opts": subject.opts,
                "provider": subject.provider,
                "config": self._configs.get(policy.name),
                "stack_tags": self._stack_tags,
            }
            args = RuleArgs(base, subject, self._settings, undetermined)
            try:
                _run(policy.validate(args, report))
            except UnknownValueError as error:
                undetermined(error.message, request.urn)
            except _NotApplicableError as error:
                response.not_applicable.append(
                    proto.PolicyNotApplicable(policy_name=policy.name, reason=error.reason or "")
                )
        return response

    def AnalyzeStack(self, request: Any, _context: Any) -> Any:  # noqa: N802 - gRPC method
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        stack_policies = [p for p in self._policies if isinstance(p, StackValidationPolicy)]
        if not any(self._level(p) for p in stack_policies):
            return response
        subjects: list[Subject] = []
        resources: list[PolicyResource] = []
        for r in request.resources:
            options = self._get_resource_options(r)
            subject = Subject(
                r.type,
                r.urn,
                r.name,
                self._props(r.properties),
                options,
                self._get_provider_resource(r),
                parent=r.parent or None,
                dependencies=tuple(r.dependencies),
                property_dependencies={k: tuple(v.urns) for k, v in r.propertyDependencies.items()},
            )
            subjects.append(subject)
            resources.append(
                PolicyResource(r.type, subject.props, r.urn, r.name, options, subject.provider, None, [], {})
            )
        by_urn = {r.urn: r for r in resources}
        for subject, resource in zip(subjects, resources, strict=True):
            resource.parent = by_urn.get(subject.parent or "")
            resource.dependencies = [by_urn[d] for d in subject.dependencies if d in by_urn]
            resource.property_dependencies = {
                k: [by_urn[u] for u in urns if u in by_urn] for k, urns in subject.property_dependencies.items()
            }
        view = StackView(subjects)
        for policy in stack_policies:
            level = self._level(policy)
            if level is None:
                continue
            report = self._create_report_violation(response, policy.name, policy.description, level, policy.severity)
            undetermined = self._undetermined(response, policy)
            base = {"resources": resources, "config": self._configs.get(policy.name), "stack_tags": self._stack_tags}
            args = StackRuleArgs(base, view, self._settings, undetermined)
            try:
                _run(policy.validate(args, report))
            except UnknownValueError as error:
                undetermined(error.message, None)
            except _NotApplicableError as error:
                response.not_applicable.append(
                    proto.PolicyNotApplicable(policy_name=policy.name, reason=error.reason or "")
                )
        return response


_ONE_DAY_S = 24 * 60 * 60


def serve(analyzer: Analyzer) -> None:
    """Serve the analyzer on a loopback port and print the port, as pulumi-policy's PolicyPack does;
    never returns."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    analyzer_pb2_grpc.add_AnalyzerServicer_to_server(analyzer, server)
    port = server.add_insecure_port(address="127.0.0.1:0")
    server.start()
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.flush()
    try:
        while True:
            time.sleep(_ONE_DAY_S)
    except KeyboardInterrupt:
        server.stop(0)
