"""The program's reading of settings and secrets, under the mock runtime."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from tools.harness import EchoMocks, run_stack


def test_missing_lambda_key_is_reported_before_any_resource() -> None:
    with pytest.raises(pulumi.RunError, match=r"sophia:lambdaApiKey: is required: the Lambda Cloud API key"):
        run_stack("prod", assume_secrets_set=False)


def test_lambda_key_in_plaintext_is_refused() -> None:
    with pytest.raises(pulumi.RunError, match=r"sophia:lambdaApiKey: must be set as a secret"):
        run_stack("prod", assume_secrets_set=False, config_overrides={"sophia:lambdaApiKey": "plain"})


def test_dr_stack_needs_no_lambda_key_only_where_its_alarms_page() -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_stack("dr", assume_secrets_set=False)
    # Where its CloudWatch alarms and the service fleet's alerts page; no Lambda key, kubeconfig or
    # backup keys.
    named = re.findall(r"sophia:(\w+): is required", str(caught.value))
    assert sorted(named) == ["alertPagerdutyRoutingKey", "alertSlackWebhookUrl", "awsAlarmPagerdutyUrl"]


class CountingMocks(EchoMocks):
    def __init__(self) -> None:
        self.registered: list[str] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.registered.append(args.name)
        return super().new_resource(args)


def test_bad_config_registers_nothing() -> None:
    counting = CountingMocks()
    with pytest.raises(pulumi.RunError):
        run_stack("dr", config_overrides={"sophia:monthlyBudgetUsd": "-1"}, mock_impl=counting)
    assert counting.registered == []
    # the same mocks do see the resources of a valid run, so the check above can fail
    run_stack("dr", mock_impl=counting)
    assert "sophia-dr-aws" in counting.registered
