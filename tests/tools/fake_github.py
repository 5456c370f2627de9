"""A fake of the GitHub REST API on 127.0.0.1: issues, their comments, pages, and GitHub's body limit.

Enough of the API for tools/github_api.py, with GitHub's behaviours the workflows depend on:
listings in pages of at most 100 with `Link: <...>; rel="next"`, bodies over 65,536 characters
refused with 422, the job token's comments authored by the `github-actions[bot]` Bot user.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-github-token"
REPOSITORY = "sophia-ai/sophia-infra"
BOT = {"login": "github-actions[bot]", "type": "Bot"}
MAX_BODY = 65_536


class FakeGitHub:
    def __init__(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1000)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeGitHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        return {"GITHUB_API_URL": self.api_url, "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_TOKEN": TOKEN}

    # -- state tests set up and read ------------------------------------------------------

    def add_pull_request(self) -> int:
        number = next(self._numbers)
        self.issues[number] = {"number": number, "title": "a change", "state": "open", "labels": [], "pull_request": {}}
        return number

    def add_comment(self, issue: int, body: str, user: dict[str, str] | None = None) -> int:
        comment_id = next(self._ids)
        self.comments[comment_id] = {"id": comment_id, "issue": issue, "body": body, "user": user or BOT}
        return comment_id

    def comments_on(self, issue: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == issue]

    # -- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        prefix = f"/repos/{REPOSITORY}"
        if not url.path.startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        route = url.path[len(prefix) :]
        if isinstance(body, dict) and len(str(body.get("body", ""))) > MAX_BODY:
            return 422, {"message": "Validation Failed", "errors": [{"field": "body", "code": "custom"}]}, {}
        with self._lock:
            if method == "GET" and (m := re.fullmatch(r"/issues/(\d+)/comments", route)):
                items = sorted(self.comments_on(int(m.group(1))), key=lambda c: c["id"])
                return self._page(url.path, query, [_public(c) for c in items])
            if method == "POST" and (m := re.fullmatch(r"/issues/(\d+)/comments", route)):
                comment_id = self.add_comment(int(m.group(1)), body["body"])
                return 201, _public(self.comments[comment_id]), {}
            if method == "PATCH" and (m := re.fullmatch(r"/issues/comments/(\d+)", route)):
                comment = self.comments[int(m.group(1))]
                comment["body"] = body["body"]
                return 200, _public(comment), {}
            if method == "GET" and route == "/issues":
                wanted = query.get("labels")
                items = [
                    i
                    for i in self.issues.values()
                    if i["state"] == query.get("state", "open") and (not wanted or wanted in i["labels"])
                ]
                return self._page(url.path, query, items)
            if method == "POST" and route == "/issues":
                number = next(self._numbers)
                self.issues[number] = {
                    "number": number,
                    "title": body["title"],
                    "body": body["body"],
                    "state": "open",
                    "labels": list(body.get("labels", [])),
                }
                return 201, self.issues[number], {}
            if method == "PATCH" and (m := re.fullmatch(r"/issues/(\d+)", route)):
                self.issues[int(m.group(1))].update(body)
                return 200, self.issues[int(m.group(1))], {}
        return 404, {"message": "Not Found"}, {}

    def _page(self, path: str, query: dict[str, str], items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        size = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        headers: dict[str, str] = {}
        if page * size < len(items):
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
            headers["Link"] = f'<{self.api_url}{path}?{rest}&page={page + 1}>; rel="next"'
        return 200, chunk, headers


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comment.items() if k != "issue"}


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the fake's state."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append((self.command, self.path))
            answer: tuple[int, Any, dict[str, str]] = (401, {"message": "Bad credentials"}, {})
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                answer = fake.handle(self.command, self.path, body)
            status, payload, headers = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815 - http.server's names

    return Handler
