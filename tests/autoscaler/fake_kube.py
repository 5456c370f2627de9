"""A small Kubernetes API server for tests: Nodes only, over HTTPS on 127.0.0.1, bearer token required.

It answers `GET /api/v1/nodes` (with `limit` and `continue`, one node per page when `page_size` is 1)
and `DELETE /api/v1/nodes/{name}` with a uid precondition (409 when the uid differs, 404 when there is
no such node), as the API server does, and records every delete.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "service-account-token"


class FakeKube:
    def __init__(self, cert: Path, key: Path, *, page_size: int = 500) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.deleted: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.page_size = page_size
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_node(self, name: str, provider_id: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """A Node as the kubelet registers it."""
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": dict(labels or {})},
            "spec": {"providerID": provider_id} if provider_id else {},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
        }
        with self._lock:
            self.nodes[name] = node
        return node

    def names(self) -> set[str]:
        with self._lock:
            return set(self.nodes)

    def list_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = min(int(query.get("limit", ["500"])[0]), self.page_size)
        start = int(query.get("continue", ["0"])[0])
        with self._lock:
            items = [self.nodes[n] for n in sorted(self.nodes)]
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"continue": str(start + limit) if more else ""},
            "items": page,
        }

    def delete(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        uid = ((body.get("preconditions") or {}).get("uid")) if body else None
        with self._lock:
            node = self.nodes.get(name)
            if node is None:
                return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            if uid is not None and node["metadata"]["uid"] != uid:
                return 409, {"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409}
            del self.nodes[name]
            self.deleted.append(node)
        return 200, {"kind": "Status", "status": "Success", "code": 200}


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self._reply(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
            return False

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            kube.requests.append(f"GET {url.path}")
            if not self._authorized():
                return
            if url.path != "/api/v1/nodes":
                self._reply(404, {"kind": "Status", "code": 404})
                return
            self._reply(200, kube.list_page(parse_qs(url.query)))

        def do_DELETE(self) -> None:
            url = urlsplit(self.path)
            kube.requests.append(f"DELETE {url.path}")
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self._authorized():
                return
            prefix = "/api/v1/nodes/"
            if not url.path.startswith(prefix):
                self._reply(404, {"kind": "Status", "code": 404})
                return
            self._reply(*kube.delete(unquote(url.path[len(prefix) :]), body))

    return Handler
