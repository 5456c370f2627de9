"""The GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema's vendored
copy), clean under zizmor's security audits, and shaped as the team relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.harness import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)


def test_workflows_match_the_github_workflow_schema() -> None:
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: not-a-list\n")
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken))
    assert result.returncode != 0


def test_zizmor_finds_nothing() -> None:
    result = run(str(BIN / "zizmor"), "--offline", "--config", ".github/zizmor.yml", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert document["permissions"] == {}, "grant per job, nothing at the top"
    for job in document["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                name, _, ref = step["uses"].partition("@")
                assert ref.startswith("v"), f"{name} is not pinned to a release"
                if name == "actions/checkout":
                    assert step["with"]["persist-credentials"] is False


def test_deploys_go_dev_then_prod_then_dr_through_environments() -> None:
    deploy = load("deploy.yml")["jobs"]
    assert "needs" not in deploy["dev"]
    assert deploy["prod"]["needs"] == "dev"
    assert deploy["dr"]["needs"] == "prod"
    assert {job["with"]["stack"] for job in deploy.values()} == {"dev", "prod", "dr"}
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    pulumi = next(s for s in up["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["policyPackConfigs"] == "policies/config/${{ inputs.stack }}.json"


def test_drift_shares_the_stack_lock_and_only_previews() -> None:
    job = load("drift.yml")["jobs"]["refresh"]
    assert job["concurrency"]["group"] == "pulumi-${{ matrix.stack }}"
    command = job["steps"][-1]["run"]
    assert "pulumi refresh --preview-only --expect-no-changes" in command


def test_pull_requests_test_plan_and_preview_every_stack_with_the_pack() -> None:
    jobs = load("pull-request.yml")["jobs"]
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    script = next(s for s in jobs["plan"]["steps"] if "uses" in s and "github-script" in s["uses"])["with"]["script"]
    assert "<!-- sophia-plan -->" in script  # updates its own comment instead of adding one
    assert "updateComment" in script
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod", "dr"]
    step = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert step["uses"] == "pulumi/actions@v7"
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["policyPacks"] == "policies"
    assert step["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_secrets_come_only_from_the_secrets_context() -> None:
    for path in FILES:
        for line in path.read_text().splitlines():
            if any(key in line for key in ("TOKEN:", "SECRET_ACCESS_KEY:", "ACCESS_KEY_ID:")) and "${{" in line:
                assert "${{ secrets." in line, f"{path.name}: {line.strip()}"
