"""The plan comment against a fake GitHub API on 127.0.0.1: created once, then updated in place."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tools.fake_github import FakeGitHub
from tools.github_api import MAX_BODY, GitHub
from tools.plan_report import COMMENT_MARKER


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as github:
        yield github


def client(fake: FakeGitHub) -> GitHub:
    return GitHub.from_env(fake.env())


def test_the_first_push_creates_the_comment_and_later_pushes_update_it(fake: FakeGitHub) -> None:
    pr = fake.add_pull_request()
    github = client(fake)
    action, first = github.upsert_comment(pr, COMMENT_MARKER, f"{COMMENT_MARKER}\nplan one")
    assert action == "created"
    action, second = github.upsert_comment(pr, COMMENT_MARKER, f"{COMMENT_MARKER}\nplan two")
    assert (action, second) == ("updated", first)
    assert [c["body"] for c in fake.comments_on(pr)] == [f"{COMMENT_MARKER}\nplan two"]


def test_the_comment_is_found_past_the_first_hundred(fake: FakeGitHub) -> None:
    pr = fake.add_pull_request()
    human = {"login": "reviewer", "type": "User"}
    for index in range(130):
        fake.add_comment(pr, f"review note {index}", human)
    mine = fake.add_comment(pr, f"{COMMENT_MARKER}\nold plan")
    for index in range(40):
        fake.add_comment(pr, f"more notes {index}", human)
    assert client(fake).upsert_comment(pr, COMMENT_MARKER, f"{COMMENT_MARKER}\nnew plan") == ("updated", mine)
    assert len(fake.comments_on(pr)) == 171
    assert any("page=2" in path for _, path in fake.requests)


def test_a_body_that_starts_with_a_newline_still_updates_in_place(fake: FakeGitHub) -> None:
    pr = fake.add_pull_request()
    github = client(fake)
    github.upsert_comment(pr, COMMENT_MARKER, f"\n\n{COMMENT_MARKER}\nplan")
    github.upsert_comment(pr, COMMENT_MARKER, f"\n{COMMENT_MARKER}\nplan again")
    assert len(fake.comments_on(pr)) == 1


def test_a_human_quoting_the_marker_is_not_overwritten(fake: FakeGitHub) -> None:
    pr = fake.add_pull_request()
    quoted = fake.add_comment(pr, f"{COMMENT_MARKER} why is this blocked?", {"login": "dev", "type": "User"})
    client(fake).upsert_comment(pr, COMMENT_MARKER, f"{COMMENT_MARKER}\nplan")
    assert fake.comments[quoted]["body"].endswith("why is this blocked?")
    assert len(fake.comments_on(pr)) == 2


def test_a_100k_plan_is_cut_to_what_github_accepts(fake: FakeGitHub) -> None:
    pr = fake.add_pull_request()
    client(fake).upsert_comment(pr, COMMENT_MARKER, COMMENT_MARKER + "\n" + "x" * 100_000)
    (comment,) = fake.comments_on(pr)
    assert len(comment["body"]) <= MAX_BODY
    assert "artifacts" in comment["body"][-200:]
