"""The pack's identity and its policies. Importable anywhere; only `__main__.py` starts the server."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from policies.rules import aws, cost, kubernetes, lambda_cloud, services, stateful

PACK_NAME = "sophia-guardrails"
PACK_VERSION = "0.1.0"
# Each policy sets its own default level (security/budget mandatory, hygiene advisory);
# this applies only to a policy that does not.
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY


def all_policies() -> list[Policy]:
    return [
        *cost.POLICIES,
        *aws.POLICIES,
        *kubernetes.POLICIES,
        *lambda_cloud.POLICIES,
        *stateful.POLICIES,
        *services.POLICIES,
    ]
