"""The GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema's vendored
copy), clean under zizmor's auditor persona, pinned, and shaped as the team relies on: PR code never
holds a prod or dr credential, every `pulumi` command runs with the virtualenvs a user builds
locally and the pinned CLI. tests/test_workflow_steps.py plays the steps themselves."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.harness import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))
REFERENCE_PINS = PROJECT_ROOT.parent / "shared" / "reference" / "github-actions-pins.md"
DOCUMENTED_PINS = PROJECT_ROOT / "docs" / "ci.md"
_PIN_ROW = re.compile(r"^\| `([\w.-]+/[\w.-]+)` \| (v[\d.]+) \| `([0-9a-f]{40})` \|", re.M)


def load(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)


def steps(path: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, job in yaml.safe_load(path.read_text())["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


def pins(path: Path) -> dict[str, list[tuple[str, str]]]:
    """action -> [(release tag, commit SHA)], from a pins table."""
    table: dict[str, list[tuple[str, str]]] = {}
    for action, tag, sha in _PIN_ROW.findall(path.read_text()):
        table.setdefault(action, []).append((tag, sha))
    return table


def test_workflows_match_the_github_workflow_schema() -> None:
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: not-a-list\n")
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken))
    assert result.returncode != 0


def test_zizmor_auditor_persona_finds_nothing() -> None:
    assert not (PROJECT_ROOT / ".github" / "zizmor.yml").exists(), "no exceptions: fix the finding instead"
    result = run(str(BIN / "zizmor"), "--offline", "--persona", "auditor", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_the_auditor_persona_would_catch_pr_code_holding_a_secret(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.yml"
    leaky.write_text(
        "name: leaky\non: pull_request\npermissions: {}\njobs:\n  preview:\n    runs-on: ubuntu-24.04\n"
        "    permissions: {}\n    steps:\n      - run: pulumi preview\n"
        "        env:\n          PULUMI_ACCESS_TOKEN: ${{ secrets.PULUMI_ACCESS_TOKEN }}\n"
    )
    result = run(str(BIN / "zizmor"), "--offline", "--persona", "auditor", str(leaky))
    assert "secrets-outside-env" in result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_least_privilege_and_actions_pinned_to_release_commits(path: Path) -> None:
    reference, documented = pins(REFERENCE_PINS), pins(DOCUMENTED_PINS)
    document = yaml.safe_load(path.read_text())
    assert document["permissions"] == {}, "grant per job, nothing at the top"
    lines = path.read_text().splitlines()
    for _, _, step in steps(path):
        if "uses" not in step or step["uses"].startswith(("./", "$/")):
            continue
        name, _, sha = step["uses"].partition("@")
        line = next(line for line in lines if f"uses: {step['uses']}" in line)
        tag = line.split("#", 1)[1].strip()
        assert (tag, sha) in documented.get(name, []), f"{name}@{sha} ({tag}) is not in docs/ci.md's pins"
        if name in reference:
            assert (tag, sha) in reference[name], f"{name} {tag}: SHA differs from the reference pins"
            newest = max(reference[name], key=lambda pin: [int(x) for x in pin[0][1:].split(".")])
            assert tag == newest[0], f"{name} is on {tag}, the newest release is {newest[0]}"
        if name == "actions/checkout":
            assert step["with"]["persist-credentials"] is False


def test_the_cli_is_pinned_to_the_sdk_in_one_place() -> None:
    version = (PROJECT_ROOT / ".pulumi-version").read_text().strip()
    requirement = next(
        line for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pulumi==")
    )
    assert requirement == f"pulumi=={version}"
    for path in FILES:
        for _, _, step in steps(path):
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version-file"] == ".pulumi-version", path.name
                assert "pulumi-version" not in step["with"]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_pulumi_command_runs_with_the_virtualenvs_a_user_builds(path: Path) -> None:
    for name, job in yaml.safe_load(path.read_text())["jobs"].items():
        runs = " ".join(s.get("run", "") for s in job.get("steps", []))
        for step in job.get("steps", []):
            inputs = step.get("with") or {}
            runs_pulumi = step.get("uses", "").startswith("pulumi/actions@") and "command" in inputs
            if runs_pulumi or "pulumi refresh" in step.get("run", ""):
                assert "make -s venv" in runs, f"{path.name}/{name}: no program virtualenv"
            if inputs.get("policyPacks"):
                assert "policy-venv" in runs, f"{path.name}/{name}: no policy pack virtualenv"


def test_pull_request_code_never_holds_a_prod_or_dr_credential() -> None:
    text = (WORKFLOWS / "pull-request.yml").read_text()
    assert "secrets." not in text
    jobs = load("pull-request.yml")["jobs"]
    assert all("environment" not in job for job in jobs.values())
    preview = jobs["preview"]
    step = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert step["with"]["stack-name"].endswith("/dev")
    assert preview["permissions"]["id-token"] == "write"  # read-only credentials by OIDC
    auth = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/auth-actions@"))
    assert auth["with"]["requested-token-type"].endswith(":team")
    for stack in ("prod", "dr"):
        assert f"/{stack}" not in text
        assert f"config/{stack}.json" not in text


def test_secrets_are_read_only_in_jobs_of_a_protected_environment() -> None:
    for path in FILES:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            if "${{ secrets." in yaml.safe_dump(job):
                assert "environment" in job, f"{path.name}/{name} reads a secret outside an environment"


def test_deploys_go_dev_then_prod_then_dr_previewing_first() -> None:
    deploy = load("deploy.yml")["jobs"]
    assert "needs" not in deploy["dev"]
    assert deploy["prod"]["needs"] == "dev"
    assert deploy["dr"]["needs"] == "prod"
    assert {job["with"]["stack"] for job in deploy.values()} == {"dev", "prod", "dr"}
    jobs = load("pulumi-up.yml")["jobs"]
    assert jobs["preview"]["environment"] == "${{ inputs.stack }}-preview"
    assert jobs["up"]["needs"] == "preview"
    assert jobs["up"]["environment"] == "${{ inputs.stack }}"
    assert jobs["up"]["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}
    for job, command in (("preview", "preview"), ("up", "up")):
        step = next(s for s in jobs[job]["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
        assert step["with"]["command"] == command
        assert step["with"]["policyPackConfigs"] == "policies/config/${{ inputs.stack }}.json"


def test_drift_and_deploys_cannot_cancel_each_others_queued_runs() -> None:
    drift = load("drift.yml")["jobs"]["refresh"]
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert drift["concurrency"]["group"] != up["concurrency"]["group"].replace("inputs.stack", "matrix.stack")
    assert drift["concurrency"]["group"].startswith("pulumi-drift-")
    assert drift["strategy"]["matrix"]["stack"] == ["dev", "prod", "dr"]
    command = next(s["run"] for s in drift["steps"] if "pulumi refresh" in s.get("run", ""))
    assert "pulumi refresh --preview-only --expect-no-changes" in command
