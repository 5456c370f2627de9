"""The pack's identity and its policies. Importable anywhere; only `__main__.py` starts the server."""

from __future__ import annotations

from pathlib import Path

import yaml
from pulumi_policy import EnforcementLevel, Policy

from policies.analyzer import Analyzer
from policies.rules import (
    aws,
    aws_dr,
    aws_platform,
    cost,
    iam,
    kubernetes,
    lambda_cloud,
    network,
    services,
    stack_config,
    stateful,
)

PACK_DIR = Path(__file__).resolve().parent
PACK_NAME = "sophia-guardrails"
_MANIFEST = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
PACK_VERSION = str(_MANIFEST["version"])
"""Declared once, in PulumiPolicy.yaml (where the CLI reads it)."""
PACK_DESCRIPTION = str(_MANIFEST["description"])
# Each policy sets its own default level (security/budget mandatory, hygiene advisory);
# this applies only to a policy that does not.
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY


def all_policies() -> list[Policy]:
    return [
        *stack_config.POLICIES,
        *cost.POLICIES,
        *aws.POLICIES,
        *aws_platform.POLICIES,
        *aws_dr.POLICIES,
        *iam.POLICIES,
        *network.POLICIES,
        *kubernetes.POLICIES,
        *lambda_cloud.POLICIES,
        *stateful.POLICIES,
        *services.POLICIES,
    ]


def analyzer(policies: list[Policy] | None = None, *, stack: str | None = None) -> Analyzer:
    """The pack's analyzer; `stack` stands in for the CLI's PULUMI_STACK (in-process evaluation)."""
    return Analyzer(
        PACK_NAME,
        PACK_VERSION,
        policies if policies is not None else all_policies(),
        PACK_ENFORCEMENT,
        description=PACK_DESCRIPTION,
        stack=stack,
    )
