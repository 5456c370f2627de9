from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.autoscaler.harness import SSH_KEY
from tests.providers.lambda_cloud.emulator import LambdaEmulator

# 1 API second = 10 ms: a 12 s launch slot is 0.12 s, a 30 s boot 0.3 s.
TEST_SCALE = 0.01


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", str(TEST_SCALE))
    with LambdaEmulator(time_scale=TEST_SCALE, boot_s={1: 30.0, 8: 60.0}) as emu:
        emu.add_ssh_key(SSH_KEY)
        yield emu
        assert emu.violations == [], "emulator saw requests or sent responses outside the OpenAPI document"
