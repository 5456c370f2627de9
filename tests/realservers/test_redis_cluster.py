"""The Redis configuration `RedisCluster` generates, on six real redis-server processes on 127.0.0.1.

Forms a 3-master / 3-replica cluster with `redis-cli --cluster create` over TLS, writes keys
acknowledged by a replica (WAIT), kills a master and checks its replica takes over and
every acknowledged key is still readable.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from components.redis_config import (
    DEFAULT_NODE_TIMEOUT_MS,
    RedisNodeConfig,
    RedisTls,
    render_auth_conf,
    render_redis_conf,
)
from tests.realservers.certs import ServerCerts, make_certs
from tests.realservers.ports import free_port
from tests.tools_on_path import require_tool

PASSWORD = "test-cluster-password-5f2c"
NODES = 6


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]


def _client(port: int, certs: ServerCerts) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, password=PASSWORD, ssl=True, ssl_ca_certs=str(certs.ca), socket_timeout=5
    )


def _command(client: redis.Redis, *args: object) -> Any:
    """redis-py leaves execute_command untyped."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _wait_until(check: object, timeout: float, what: str) -> float:
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
    (tmp_path / "auth.conf").write_text(render_auth_conf(PASSWORD))
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
            _wait_until(lambda n=node: _client(n.port, certs).ping(), 15, f"redis on {node.port}")
        subprocess.run(
            [
                cli,
                "--tls",
                "--cacert",
                str(certs.ca),
                "-a",
                PASSWORD,
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
        _wait_until(
            lambda: all(b"cluster_state:ok" in _command(_client(n.port, certs), "CLUSTER", "INFO") for n in nodes),
            30,
            "cluster_state:ok on every node",
        )
        yield nodes, certs
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.terminate()
                node.process.wait(timeout=10)


def _masters(nodes: list[Node], certs: ServerCerts) -> dict[int, list[tuple[int, int]]]:
    """Master port -> its slot ranges."""
    masters: dict[int, list[tuple[int, int]]] = {}
    for start, end, master, *_ in _command(_client(nodes[0].port, certs), "CLUSTER", "SLOTS"):
        masters.setdefault(int(master[1]), []).append((int(start), int(end)))
    return masters


def test_generated_config_forms_a_cluster_and_survives_a_master_failure(
    cluster: tuple[list[Node], ServerCerts],
) -> None:
    nodes, certs = cluster
    masters = _masters(nodes, certs)
    assert len(masters) == 3
    info = _command(_client(nodes[0].port, certs), "CLUSTER", "INFO").decode()
    assert "cluster_size:3" in info
    assert "cluster_known_nodes:6" in info

    victim = next(iter(masters))
    ranges = masters[victim]
    acknowledged: dict[str, str] = {}
    direct = _client(victim, certs)
    for index in range(2000):
        key = f"key:{index}"
        if any(start <= key_slot(key.encode()) <= end for start, end in ranges):
            direct.set(key, f"value-{index}")
            acknowledged[key] = f"value-{index}"
    # WAIT on the same connection: every write above reached the master's replica.
    assert _command(direct, "WAIT", 1, 5000) == 1
    assert len(acknowledged) > 300

    replica_port = next(
        n.port
        for n in nodes
        if n.port != victim
        and _command(_client(n.port, certs), "ROLE")[0] == b"slave"
        and int(_command(_client(n.port, certs), "ROLE")[2]) == victim
    )
    victim_node = next(n for n in nodes if n.port == victim)
    killed_at = time.monotonic()
    victim_node.process.send_signal(signal.SIGKILL)
    victim_node.process.wait(timeout=10)

    def promoted() -> bool:
        return bool(_command(_client(replica_port, certs), "ROLE")[0] == b"master")

    _wait_until(promoted, 4 * DEFAULT_NODE_TIMEOUT_MS / 1000, "the replica to be promoted")
    failover_s = time.monotonic() - killed_at
    # Promotion follows node-timeout (the master is marked failed) plus a short election.
    assert failover_s < 2 * DEFAULT_NODE_TIMEOUT_MS / 1000, f"failover took {failover_s:.1f}s"
    print(
        f"\nredis failover: replica promoted {failover_s:.2f}s after SIGKILL "
        f"(node timeout {DEFAULT_NODE_TIMEOUT_MS} ms)"
    )

    survivors = [n for n in nodes if n.port != victim]
    _wait_until(
        lambda: b"cluster_state:ok" in _command(_client(survivors[0].port, certs), "CLUSTER", "INFO"),
        20,
        "cluster_state:ok after failover",
    )
    client = ClusterClient(
        host="127.0.0.1", port=survivors[0].port, password=PASSWORD, ssl=True, ssl_ca_certs=str(certs.ca)
    )
    try:
        missing = [k for k, v in acknowledged.items() if client.get(k) != v.encode()]
    finally:
        client.close()
    assert missing == []


def test_no_plaintext_port_is_open(cluster: tuple[list[Node], ServerCerts]) -> None:
    nodes, certs = cluster
    plain = redis.Redis(host="127.0.0.1", port=nodes[0].port, password=PASSWORD, socket_timeout=2)
    with pytest.raises(redis.RedisError):
        plain.ping()
    wrong = redis.Redis(
        host="127.0.0.1", port=nodes[0].port, password="wrong", ssl=True, ssl_ca_certs=str(certs.ca), socket_timeout=2
    )
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
