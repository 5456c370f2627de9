"""The pack's own settings: the stack its config was written for, that stack's environment, its
data namespaces and its service namespaces. The analyzer refuses a config that names another stack
(`Configure` fails); this policy reports the same, and carries the settings' schema."""

from __future__ import annotations

from pulumi_policy import Severity

from policies.analyzer import STACK_CONFIG_POLICY, running_stack
from policies.common import DEFAULT_DATA_NAMESPACES, ENVIRONMENTS, Category, Ctx, Rule
from policies.model.subject import StackView

STACK_CONFIG = Rule(
    STACK_CONFIG_POLICY,
    "The policy config names the stack it was written for, its environment, its data and service namespaces.",
    Severity.CRITICAL,
    "Run with policies/config/<stack>.json, whose sophia-pack-stack-config.stack is that stack's name.",
    Category.SECURITY,
    config={
        "stack": {"type": "string", "minLength": 1, "description": "The stack this config is for."},
        "environment": {
            "type": "string",
            "enum": list(ENVIRONMENTS),
            "description": "prod and dr get the strict rules (deletion protection, multi-AZ, protect).",
        },
        "dataNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_DATA_NAMESPACES),
            "description": "Kubernetes namespaces that hold data stores.",
        },
        "serviceNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Kubernetes namespaces of the service fleet: every workload in them is a service.",
        },
    },
    required=("stack", "environment"),
)


def _stack_config(_view: StackView, ctx: Ctx) -> None:
    named, running = ctx.settings.stack, ctx.settings.running_stack or running_stack()
    if named is None:
        ctx.violation("the policy config names no stack.")
    elif running is not None and named != running:
        ctx.violation(f"the policy config is for stack {named}, but this is stack {running}.")


POLICIES = [STACK_CONFIG.stack(_stack_config)]
