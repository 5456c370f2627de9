"""The few GitHub REST calls the workflows make: one PR comment kept up to date, one issue per drift.

Runs in the workflows as `python -m tools.pr_comment` and `python -m tools.drift_issue`, with the
job's `GITHUB_TOKEN`, `GITHUB_API_URL` and `GITHUB_REPOSITORY`; the tests point it at a fake
GitHub API on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

# GitHub refuses issue and PR comments longer than 65,536 characters.
MAX_BODY = 65_536
TIMEOUT_S = 30.0
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(Exception):
    """An answer from the API that is not a success."""


@dataclass(frozen=True)
class GitHub:
    api_url: str
    repository: str
    """owner/name."""
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHub:
        env = os.environ if env is None else env
        missing = [k for k in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not env.get(k)]
        if missing:
            raise GitHubError(f"{', '.join(missing)} not set (the workflow passes them)")
        return cls(env.get("GITHUB_API_URL", "https://api.github.com"), env["GITHUB_REPOSITORY"], env["GITHUB_TOKEN"])

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.api_url}/repos/{self.repository}{path}"
        response = requests.request(
            method,
            url,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            timeout=TIMEOUT_S,
            **kwargs,
        )
        if not response.ok:
            raise GitHubError(f"{method} {url.split('?')[0]} answered {response.status_code}: {response.text[:200]}")
        return response

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following the `Link: rel="next"` pages."""
        url: str | None = f"{path}{'&' if '?' in path else '?'}per_page=100"
        while url is not None:
            response = self._call("GET", url)
            yield from response.json()
            match = _NEXT.search(response.headers.get("Link", ""))
            url = match.group(1) if match else None

    def upsert_comment(self, issue_number: int, marker: str, body: str) -> tuple[str, int]:
        """Update the bot's comment that starts with `marker`, or create it: ("updated"|"created", id)."""
        body = fit(body if body.lstrip().startswith(marker) else f"{marker}\n{body}")
        for comment in self.pages(f"/issues/{issue_number}/comments"):
            if comment.get("user", {}).get("type") == "Bot" and str(comment.get("body", "")).lstrip().startswith(
                marker
            ):
                self._call("PATCH", f"/issues/comments/{comment['id']}", json={"body": body})
                return "updated", int(comment["id"])
        created = self._call("POST", f"/issues/{issue_number}/comments", json={"body": body}).json()
        return "created", int(created["id"])

    def open_issue(self, title: str, label: str) -> dict[str, Any] | None:
        for issue in self.pages(f"/issues?state=open&labels={label}"):
            if issue.get("title") == title and "pull_request" not in issue:
                return issue
        return None

    def report_issue(self, title: str, label: str, body: str) -> tuple[str, int]:
        """Open an issue, or comment on the open one with the same title: ("opened"|"commented", number)."""
        existing = self.open_issue(title, label)
        if existing is not None:
            self._call("POST", f"/issues/{existing['number']}/comments", json={"body": fit(body)})
            return "commented", int(existing["number"])
        created = self._call("POST", "/issues", json={"title": title, "body": fit(body), "labels": [label]}).json()
        return "opened", int(created["number"])

    def close_issue(self, title: str, label: str, note: str) -> int | None:
        existing = self.open_issue(title, label)
        if existing is None:
            return None
        self._call("POST", f"/issues/{existing['number']}/comments", json={"body": note})
        self._call("PATCH", f"/issues/{existing['number']}", json={"state": "closed"})
        return int(existing["number"])


def fit(body: str, limit: int = MAX_BODY) -> str:
    """`body` cut to GitHub's limit, saying so, should a caller's own folding not have been enough."""
    if len(body) <= limit:
        return body
    note = "\n\n_(cut to fit GitHub's comment limit; the full text is in the run's artifacts)_\n"
    return body[: limit - len(note)] + note
