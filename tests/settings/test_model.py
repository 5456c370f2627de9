"""Stack-wide settings (environment, budget, tags) and how errors read; domain rules are in the test_<domain> files."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, parse_settings
from settings.base import Environment
from tests.helpers import stack_config, with_value
from tests.settings.broken import Broken, assert_rejected, pools

BROKEN: list[Broken] = [
    ("zero budget", "sophia:monthlyBudgetUsd", "0", "sophia:monthlyBudgetUsd"),
    ("negative budget", "sophia:monthlyBudgetUsd", "-5", "sophia:monthlyBudgetUsd"),
    ("text budget", "sophia:monthlyBudgetUsd", "lots", "sophia:monthlyBudgetUsd"),
    ("infinite budget", "sophia:monthlyBudgetUsd", "Infinity", "sophia:monthlyBudgetUsd"),
    ("unknown environment", "sophia:environment", "staging", "sophia:environment"),
    ("misspelt top-level key", "sophia:monthlyBudget", "100", "sophia:monthlyBudget"),
    ("empty owner", "sophia:tags", {"owner": "", "costCentre": "x"}, "sophia:tags.owner"),
    ("missing cost centre", "sophia:tags", {"owner": "me"}, "sophia:tags.costCentre"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)


def test_unknown_key_lists_what_is_allowed() -> None:
    with pytest.raises(SettingsError, match=r"sophia:lambdaRegon: unknown key; allowed here: .*lambdaRegion"):
        parse_settings(with_value(stack_config(), "sophia:lambdaRegon", "us-west-1"))


def test_unknown_instance_type_lists_catalog() -> None:
    with pytest.raises(SettingsError, match="allowed: gpu_1x_a10, gpu_1x_a100"):
        parse_settings(with_value(stack_config(), "sophia:gpuPools", pools(instanceType="gpu_9x_z")))


def test_several_problems_are_all_reported_on_one_line() -> None:
    config = with_value(stack_config(), "sophia:gpuPools", pools(instanceType="nope", maxx=1))
    config = with_value(config, "sophia:monthlyBudgetUsd", "0")
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    assert set(caught.value.keys) == {
        "sophia:gpuPools[0].instanceType",
        "sophia:gpuPools[0].maxx",
        "sophia:monthlyBudgetUsd",
    }
    assert "\n" not in str(caught.value)


def test_required_keys() -> None:
    config = stack_config()
    del config["sophia:dataLayer"]
    with pytest.raises(SettingsError, match="sophia:dataLayer: is required"):
        parse_settings(config)


def test_pools_need_a_lambda_region() -> None:
    config = stack_config()
    del config["sophia:lambdaRegion"]
    with pytest.raises(SettingsError, match="sophia:lambdaRegion: is required when gpuPools is not empty"):
        parse_settings(config)


def test_pools_need_lambda_access() -> None:
    config = stack_config()
    del config["sophia:lambdaAccess"]
    with pytest.raises(SettingsError, match="sophia:lambdaAccess: is required when gpuPools is not empty"):
        parse_settings(config)


def test_primary_environments_need_kubernetes() -> None:
    config = stack_config()
    del config["sophia:kubernetes"]
    with pytest.raises(SettingsError, match="sophia:kubernetes: is required when environment is prod"):
        parse_settings(config)


def test_dr_environment_needs_dr_section() -> None:
    config = stack_config("dr")
    del config["sophia:dr"]
    with pytest.raises(SettingsError, match="sophia:dr: is required when environment is dr"):
        parse_settings(config)


def test_other_namespaces_pass_through() -> None:
    config = stack_config()
    config["aws:region"] = "us-east-1"
    config["kubernetes:context"] = "x"
    assert parse_settings(config).environment is Environment.PROD


def test_settings_are_frozen() -> None:
    settings = parse_settings(stack_config())
    with pytest.raises(ValueError, match="frozen"):
        settings.environment = Environment.DEV  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        settings.gpu_pools[0].desired = 5  # type: ignore[misc]
