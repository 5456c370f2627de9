"""Small stacks written with the SDKs' own resource classes (pulumi-aws, pulumi-kubernetes, the Lambda
resources), registered under the mocks exactly as the engine receives them, then run through the
pack's analyzer one policy at a time."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pulumi_aws
import pulumi_kubernetes
import pulumi_random

from policies.pack import all_policies
from tools.harness import UNKNOWN, StackRun, run_program
from tools.policy_eval import Evaluation, Violation, evaluate

# The SDKs, untyped for the tests: their classes still check every argument at run time, while mypy
# would infer each dict literal against the SDKs' unions of input types (tens of GiB for these tests).
aws: Any = pulumi_aws
k8s: Any = pulumi_kubernetes
random: Any = pulumi_random

STACK = "prod"
PROJECT = "sophia"
POLICIES = {p.name: p for p in all_policies()}
DELETE = object()
"""In `changed`/`with_`: remove the key."""


def program(build: Callable[[], object], *, first_preview: bool = False) -> StackRun:
    """Register what `build` creates, as a preview (`first_preview`: of a stack being created)."""
    return run_program(build, stack=STACK, project=PROJECT, first_preview=first_preview)


def pack_config(environment: str | None = None, data_namespaces: list[str] | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"stack": STACK, "environment": environment or "prod"}
    if data_namespaces is not None:
        settings["dataNamespaces"] = data_namespaces
    return {"sophia-pack-stack-config": settings}


def evaluation(
    policy: str,
    run: StackRun,
    config: Mapping[str, Any] | None = None,
    *,
    environment: str | None = None,
    data_namespaces: list[str] | None = None,
    also: Mapping[str, Mapping[str, Any]] | None = None,
) -> Evaluation:
    """One policy (with the pack's stack config when the test sets the environment or namespaces)."""
    user: dict[str, Any] = {policy: dict(config)} if config else {}
    policies = [POLICIES[policy]]
    if environment is not None or data_namespaces is not None:
        user |= pack_config(environment, data_namespaces)
        policies.append(POLICIES["sophia-pack-stack-config"])
    for name, values in (also or {}).items():
        user[name] = dict(values)
        if POLICIES[name] not in policies:
            policies.append(POLICIES[name])
    return evaluate(run, user, policies=policies)


def violations(policy: str, run: StackRun, config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Violation]:
    return [v for v in evaluation(policy, run, config, **kwargs).violations if v.policy == policy]


def messages(policy: str, run: StackRun, config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[str]:
    return [v.message for v in violations(policy, run, config, **kwargs)]


def skipped(policy: str, run: StackRun, config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[str]:
    return [reason for name, reason in evaluation(policy, run, config, **kwargs).skipped if name == policy]


def with_(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """`base` with keyword changes (DELETE removes a key): one broken property at a time."""
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is DELETE:
            result.pop(key, None)
        else:
            result[key] = value
    return result


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


__all__ = ["UNKNOWN", "aws", "k8s", "random"]
