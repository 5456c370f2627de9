"""moto's server on 127.0.0.1 for tests that talk to AWS APIs through boto3 or the aws CLI."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

from tests.realservers.ports import free_port


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """Start a moto server and yield its URL; every test starts from empty AWS state."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server._port}"
        # moto's backends are per process, not per server.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()
        yield url
    finally:
        server.stop()
