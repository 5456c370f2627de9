"""The DR restore checks' report step, run as its container runs it, with an `aws` that records
what it is asked to do: the metrics the alarms watch, and a Job that fails with the check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.backup.restore_checks import SCRIPTS

SCRIPT = SCRIPTS / "push_result_cloudwatch.sh"


def report(tmp_path: Path, result: str | None) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bin_dir / "aws"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    result_file = tmp_path / "result.prom"
    if result is not None:
        result_file.write_text(result)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RESULT_FILE": str(result_file),
        "NAMESPACE": "Sophia/RestoreVerification",
        "STORE": "postgres",
    }
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)
    return done.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_success_is_reported_with_the_restored_items(tmp_path: Path) -> None:
    code, calls = report(
        tmp_path,
        "sophia_restore_verification_success 1\nsophia_restore_verification_restored_items 4500\n",
    )
    assert code == 0
    assert calls == [
        "cloudwatch put-metric-data --namespace Sophia/RestoreVerification --metric-name Success --unit Count "
        "--dimensions Store=postgres --value 1",
        "cloudwatch put-metric-data --namespace Sophia/RestoreVerification --metric-name RestoredItems --unit Count "
        "--dimensions Store=postgres --value 4500",
    ]


@pytest.mark.parametrize("result", ["sophia_restore_verification_success 0\n", None, ""])
def test_a_failed_or_silent_check_reports_zero_and_fails_the_job(tmp_path: Path, result: str | None) -> None:
    code, calls = report(tmp_path, result)
    assert code != 0
    assert calls[0].endswith("--metric-name Success --unit Count --dimensions Store=postgres --value 0")
