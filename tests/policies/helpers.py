"""Build small engine-shaped stacks and run one policy over them through the real analyzer path."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from policies.pack import all_policies
from tools.harness import RegisteredResource, StackRun
from tools.policy_eval import Violation, evaluate

STACK = "prod"
PROJECT = "sophia"
AWS_PROVIDER_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:aws::aws-dr"
DEFAULT_TAGS = {"owner": "platform-infra", "cost-centre": "sophia-ai-prod", "environment": "prod"}
POLICIES = {p.name: p for p in all_policies()}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{type_}::{name}"


def res(
    type_: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    protect: bool = False,
    provider: str | None = None,
    property_dependencies: Mapping[str, tuple[str, ...]] | None = None,
    custom: bool = True,
) -> RegisteredResource:
    return RegisteredResource(
        type=type_,
        name=name,
        urn=urn(type_, name),
        parent=f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}",
        provider=provider,
        inputs=copy.deepcopy(dict(inputs)),
        protect=protect,
        custom=custom,
        property_dependencies=dict(property_dependencies or {}),
    )


def aws_provider(default_tags: Mapping[str, str] | None = None) -> RegisteredResource:
    inputs: dict[str, Any] = {"region": "us-east-1"}
    if default_tags is not None:
        # Provider inputs reach the engine as JSON text.
        inputs["defaultTags"] = json.dumps({"tags": dict(default_tags)})
    return RegisteredResource(
        type="pulumi:providers:aws",
        name="aws-dr",
        urn=AWS_PROVIDER_URN,
        parent=None,
        provider=None,
        inputs=inputs,
        protect=False,
        custom=True,
    )


def aws_res(type_: str, name: str, inputs: Mapping[str, Any], **kwargs: Any) -> RegisteredResource:
    return res(type_, name, inputs, provider=f"{AWS_PROVIDER_URN}::aws-dr-id", **kwargs)


def run_of(*resources: RegisteredResource) -> StackRun:
    return StackRun(project=PROJECT, stack=STACK, resources=tuple(resources), outputs={})


def violations(policy: str, run: StackRun, config: Mapping[str, Any] | None = None) -> list[Violation]:
    user_config = {policy: dict(config)} if config else {}
    return list(evaluate(run, user_config, policies=[POLICIES[policy]]).violations)


def messages(policy: str, run: StackRun, config: Mapping[str, Any] | None = None) -> list[str]:
    return [v.message for v in violations(policy, run, config)]


def changed(inputs: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `inputs` with the dotted `path` set (or deleted when value is DELETE)."""
    result = copy.deepcopy(dict(inputs))
    node: Any = result
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return result


DELETE = object()
