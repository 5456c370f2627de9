"""The workflows' own steps, played here: the plan job of a pull request against a fake GitHub API,
and the drift job with a stand-in for the one thing it cannot have here, the Pulumi CLI."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.tools.fake_github import REPOSITORY, FakeGitHub
from tests.workflow_player import Job, runner_env
from tools.harness import PROJECT_ROOT
from tools.plan_report import COMMENT_MARKER

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
VENV = PROJECT_ROOT / ".venv"


def git(*args: str, cwd: Path = PROJECT_ROOT) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """What actions/checkout leaves: this tree, committed, in a directory of its own (uncommitted
    work included, so the test plays the code under test). The runner would build `.venv` with
    `make venv`; here it is the one the tests run in (a warm cache)."""
    workspace = tmp_path / "workspace"
    git("worktree", "add", "--detach", str(workspace), "HEAD")
    for name in git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        source = PROJECT_ROOT / name
        if name and source.is_file() and not source.is_symlink():
            (workspace / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, workspace / name)
    for name in git("ls-files", "-z", "--deleted").split("\0"):
        if name:
            (workspace / name).unlink(missing_ok=True)
    git("add", "-A", cwd=workspace)
    git("commit", "-q", "--allow-empty", "-m", "the tree under test", cwd=workspace)
    (workspace / ".venv").symlink_to(VENV)
    try:
        yield workspace
    finally:
        for tree in (workspace, tmp_path / "base"):
            if tree.exists():
                git("worktree", "remove", "--force", str(tree))


@pytest.fixture
def warm_checkouts(tmp_path: Path) -> dict[str, str]:
    """Git config (by environment, as the runner's git reads it) that gives every new worktree the
    same warm virtualenv, so `make -s plan` on the base branch does not pip-install for minutes."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "post-checkout"
    hook.write_text(f'#!/bin/sh\n[ -e .venv ] || ln -s "{VENV}" .venv\n')
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}


def pr_job(base_sha: str, pr: int, actor: str = "developer", head_repo: str = REPOSITORY) -> Job:
    return Job(
        WORKFLOWS / "pull-request.yml",
        "plan",
        {
            "github": {
                "token": "fake-github-token",
                "actor": actor,
                "repository": REPOSITORY,
                "event": {
                    "pull_request": {
                        "number": pr,
                        "base": {"sha": base_sha},
                        "head": {"repo": {"full_name": head_repo}},
                    }
                },
            }
        },
    )


def test_the_plan_job_comments_once_and_updates_in_place(
    checkout: Path, warm_checkouts: dict[str, str], tmp_path: Path
) -> None:
    base = git("rev-parse", "HEAD", cwd=checkout)
    prod = checkout / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace('monthlyBudgetUsd: "15000"', 'monthlyBudgetUsd: "16000"'))
    git("commit", "-qam", "a pull request's change", cwd=checkout)
    with FakeGitHub() as github:
        pr = github.add_pull_request()
        job = pr_job(base, pr)
        env = runner_env(tmp_path, **github.env(), **warm_checkouts)
        played = {p.name: p for p in job.play(checkout, env)}
        assert all(p.ran and p.status == 0 for p in played.values()), {n: p.stderr[-500:] for n, p in played.items()}
        (comment,) = github.comments_on(pr)
        assert comment["body"].startswith(COMMENT_MARKER)
        for stack in ("dev", "prod", "dr"):
            assert f"| `{stack}` | clean |" in comment["body"]
            assert (checkout / "plans" / f"{stack}.base.json").exists()
        assert "The plan in the job summary" in played
        assert COMMENT_MARKER in (tmp_path / "step-summary.md").read_text()
        # The next push: the same comment, updated in place.
        job.play(checkout, env, only={"Post or update the plan comment"})
        assert len(github.comments_on(pr)) == 1


@pytest.mark.parametrize(("actor", "head_repo"), [("dependabot[bot]", REPOSITORY), ("someone", "someone/fork")])
def test_forks_and_dependabot_get_the_job_summary_not_a_comment(
    checkout: Path, warm_checkouts: dict[str, str], tmp_path: Path, actor: str, head_repo: str
) -> None:
    base = git("rev-parse", "HEAD", cwd=checkout)
    with FakeGitHub() as github:
        pr = github.add_pull_request()
        job = pr_job(base, pr, actor=actor, head_repo=head_repo)
        played = {p.name: p for p in job.play(checkout, runner_env(tmp_path, **github.env(), **warm_checkouts))}
        assert played["Post or update the plan comment"].ran is False
        assert github.comments_on(pr) == []
        assert COMMENT_MARKER in (tmp_path / "step-summary.md").read_text()
    workflow = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())
    condition = workflow["jobs"]["preview"]["if"]
    assert (
        Job(WORKFLOWS / "pull-request.yml", "preview", pr_job(base, pr, actor, head_repo).contexts).evaluate(condition)
        is False
    )


def fake_pulumi(bin_dir: Path, exit_code: int) -> None:
    """The CLI's part of `refresh --preview-only --expect-no-changes`: its output and exit code
    (7 when it finds changes, since Pulumi 3.227); everything around it is the workflow's."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "refresh of $* found {exit_code} changes"\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def drift_job(stack: str) -> Job:
    return Job(
        WORKFLOWS / "drift.yml",
        "refresh",
        {
            "github": {"token": "fake-github-token", "repository": REPOSITORY},
            "matrix": {"stack": stack},
            "vars": {"PULUMI_ORGANIZATION": "sophia-ai"},
        },
    )


def test_drift_fails_the_job_opens_an_issue_and_a_clean_check_closes_it(checkout: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    with FakeGitHub() as github:
        env = runner_env(tmp_path, **github.env())
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
        fake_pulumi(bin_dir, 7)
        played = drift_job("prod").play(checkout, env)
        assert played[-1].status == 7  # the job fails on drift
        (issue,) = [i for i in github.issues.values() if i["title"] == "Drift detected: prod"]
        assert issue["labels"] == ["drift"]
        assert "refresh of refresh --preview-only --expect-no-changes" in issue["body"]
        drift_job("prod").play(checkout, env)  # drift again the next morning: one issue, one more comment
        assert len([i for i in github.issues.values() if i["title"] == "Drift detected: prod"]) == 1
        assert len(github.comments_on(issue["number"])) == 1
        fake_pulumi(bin_dir, 0)
        played = drift_job("prod").play(checkout, env)
        assert played[-1].status == 0
        assert issue["state"] == "closed"
