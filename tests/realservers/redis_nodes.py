"""A real six-node Redis Cluster (three masters, three replicas) on 127.0.0.1, TLS-only,
configured by `render_redis_conf`: the fixture the Redis real-server tests share."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from components.data.redis_config import RedisNodeConfig, RedisTls, RedisUsers, render_auth_conf, render_redis_conf
from tests.realservers.certs import ServerCerts, make_certs
from tests.realservers.ports import free_port
from tests.tools_on_path import require_tool

PASSWORD = "test-cluster-password-5f2c"
"""The applications' password (the `default` user)."""
USERS = RedisUsers(
    app=PASSWORD,
    admin="test-admin-password-91ad",
    exporter="test-exporter-password-0c3e",
    backup="test-backup-password-77b1",
    replication="test-replication-password-4e2a",
)
NODES = 6


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]


def node_client(port: int, certs: ServerCerts, user: str = "admin", host: str = "127.0.0.1") -> redis.Redis:
    """A connection to one node as an ACL user (admin by default: the tests inspect roles and slots)."""
    password = {"default": USERS.app, **{u: getattr(USERS, u) for u in ("admin", "exporter", "backup")}}[user]
    return redis.Redis(
        host=host,
        port=port,
        username=user,
        password=password,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_check_hostname=False,
        socket_timeout=5,
    )


def command(client: redis.Redis, *args: object) -> Any:
    """redis-py leaves execute_command untyped."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def wait_until(check: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():  # type: ignore[operator]
                return time.monotonic() - started
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[Node], ServerCerts]]:
    server = require_tool("redis-server")
    cli = require_tool("redis-cli")
    certs = make_certs(tmp_path)
    (tmp_path / "auth.conf").write_text(render_auth_conf(USERS))
    nodes: list[Node] = []
    try:
        for index in range(NODES):
            port = free_port()
            data = tmp_path / f"node-{index}"
            data.mkdir()
            config = RedisNodeConfig(
                data_dir=str(data),
                auth_include=str(tmp_path / "auth.conf"),
                tls=RedisTls(cert_file=str(certs.cert), key_file=str(certs.key), ca_file=str(certs.ca)),
                port=port,
                bus_port=free_port(),
                bind="127.0.0.1",
            )
            conf = data / "redis.conf"
            conf.write_text(render_redis_conf(config))
            log = (data / "redis.log").open("wb")
            nodes.append(Node(port, subprocess.Popen([server, str(conf)], stdout=log, stderr=subprocess.STDOUT)))
        for node in nodes:
            wait_until(lambda n=node: node_client(n.port, certs).ping(), 15, f"redis on {node.port}")
        subprocess.run(
            [
                cli,
                "--tls",
                "--cacert",
                str(certs.ca),
                "--user",
                "admin",
                "-a",
                USERS.admin,
                "--no-auth-warning",
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in nodes],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(
            lambda: all(b"cluster_state:ok" in command(node_client(n.port, certs), "CLUSTER", "INFO") for n in nodes),
            30,
            "cluster_state:ok on every node",
        )
        yield nodes, certs
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.terminate()
                node.process.wait(timeout=10)
