"""The little of the Kubernetes API the node-group service uses: list Nodes, delete one (pure HTTP).

In the cluster the service authenticates as its service account: the token and the API server's CA
are mounted at `/var/run/secrets/kubernetes.io/serviceaccount/`, the address comes from
`KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`. The token is read for every request (projected
tokens are rotated), and the server's certificate is always verified against that CA.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_S = 10.0
PAGE = 500


class KubeApiError(Exception):
    """The API server answered something other than what was asked for, or nothing."""


class KubeApi:
    def __init__(self, base_url: str, token_file: Path, ca_file: Path, *, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_file = token_file
        self.ca_file = ca_file
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"KubeApi(base_url={self.base_url!r})"

    @classmethod
    def in_cluster(
        cls, environ: Mapping[str, str] = os.environ, account_dir: Path = SERVICE_ACCOUNT_DIR
    ) -> KubeApi | None:
        """The API server of the cluster the pod runs in, or None outside one (or without a token)."""
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port or not (account_dir / "token").is_file():
            return None
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return cls(f"https://{host}:{port}", account_dir / "token", account_dir / "ca.crt")

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        token = self.token_file.read_text(encoding="utf-8").strip()
        try:
            return self._session.request(
                method,
                self.base_url + path,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                verify=str(self.ca_file),
                timeout=self.timeout_s,
                **kwargs,
            )
        except requests.RequestException as error:
            raise KubeApiError(f"{method} {path}: {type(error).__name__}") from None

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every Node, page by page."""
        items: list[dict[str, Any]] = []
        params = {"limit": str(PAGE)}
        while True:
            response = self._send("GET", "/api/v1/nodes", params=params)
            if response.status_code != 200:
                raise KubeApiError(f"GET /api/v1/nodes answered {response.status_code}")
            body = response.json()
            items += body.get("items") or []
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items
            params = {"limit": str(PAGE), "continue": token}

    def delete_node(self, name: str, uid: str) -> bool:
        """Delete the Node `name` if it is still the object `uid`; False when it is gone already or was
        replaced by another of the same name (which is left alone)."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        response = self._send("DELETE", f"/api/v1/nodes/{quote(name, safe='')}", json=body)
        if response.status_code in (200, 202):
            return True
        if response.status_code in (404, 409):
            return False
        raise KubeApiError(f"DELETE /api/v1/nodes/{name} answered {response.status_code}")
