"""The pack's config is bound to one stack: it names its stack and environment, and is refused for another."""

from __future__ import annotations

import pytest

from policies.common import Ctx, PackSettings
from policies.model.subject import StackView
from policies.rules.stack_config import _stack_config
from tests.policies.helpers import POLICIES, STACK, aws, program
from tools.policy_eval import POLICY_CONFIG_DIR, PolicyConfigError, engine_config, evaluate, load_policy_config


def test_the_config_must_name_its_stack() -> None:
    with pytest.raises(PolicyConfigError, match="'stack' is a required property"):
        engine_config([POLICIES["sophia-pack-stack-config"]], {"sophia-pack-stack-config": {"environment": "prod"}})


def test_a_config_for_another_stack_is_refused() -> None:
    """The dev config (relaxed) run against prod is refused before any resource is analyzed."""
    run = program(lambda: aws.rds.Instance("db", engine="postgres", instance_class="db.r6g.large"))
    dev = load_policy_config(POLICY_CONFIG_DIR / "dev.json")
    with pytest.raises(PolicyConfigError, match="the policy config is for stack 'dev', not 'prod'"):
        evaluate(run, dev)
    assert run.stack == STACK


def test_the_stack_config_policy_reports_a_mismatch_too() -> None:
    """Defence in depth for a CLI that would skip Configure's refusal."""
    reported: list[str] = []
    settings = PackSettings(stack="dev", running_stack="prod", environment="dev")
    _stack_config(StackView([]), Ctx({}, settings, lambda m, _u: reported.append(m), lambda m, _u: None))
    assert reported == ["the policy config is for stack dev, but this is stack prod."]


def test_a_config_naming_its_stack_passes() -> None:
    run = program(lambda: aws.s3.Bucket("b"))
    config = {"sophia-pack-stack-config": {"stack": STACK, "environment": "prod"}}
    assert evaluate(run, config, policies=[POLICIES["sophia-pack-stack-config"]]).violations == ()
