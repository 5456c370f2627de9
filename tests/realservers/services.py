"""Helper servers the real-server tests start on 127.0.0.1 (S3, Pushgateway): start, wait, stop."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server for {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
        except urllib.error.HTTPError:
            return  # it answers (a 401 behind basic auth counts)
        except OSError:
            pass
        else:
            return
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def server(args: list[str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def basic_auth_web_config(path: Path, users: dict[str, str]) -> Path:
    """A Prometheus exporter-toolkit web config (what the Pushgateway mounts) with bcrypt hashes."""
    lines = ["basic_auth_users:"]
    lines += [
        f"  {user}: {bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}"
        for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def s3_server(port: int) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1:`port`; yields its URL."""
    url = f"http://127.0.0.1:{port}"
    with server([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], f"{url}/moto-api/"):
        yield url
