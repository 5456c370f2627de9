from __future__ import annotations

from pathlib import Path

import pytest

from tools.harness import run_stack
from tools.secret_scan import plaintext_secrets

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_shipped_stacks_pass_credentials_only_as_secrets(stack: str) -> None:
    assert list(plaintext_secrets(run_stack(stack))) == []


def test_cluster_join_token_stays_secret() -> None:
    run = run_stack("dev", config_overrides={"sophia:clusterJoin": '{"serverUrl": "https://k8s.internal:6443"}'})
    assert list(plaintext_secrets(run)) == []


def test_plain_credentials_are_found() -> None:
    found = sorted(plaintext_secrets(run_stack("test", project_dir=FIXTURES / "plaintext_project")))
    assert found == [("leaky", "keepers.authToken"), ("leaky", "keepers.dbPassword")]


def test_wrapped_secrets_are_not_reported() -> None:
    assert list(plaintext_secrets(run_stack("test", project_dir=FIXTURES / "secret_project"))) == []
