"""The Redis configuration `RedisCluster` generates, on six real redis-server processes on 127.0.0.1.

Forms a 3-master / 3-replica cluster with `redis-cli --cluster create` over TLS, writes keys
acknowledged by a replica (WAIT), kills a master and checks its replica takes over and
every acknowledged key is still readable.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from components.data.redis_config import DEFAULT_NODE_TIMEOUT_MS
from tests.realservers.certs import ServerCerts
from tests.realservers.redis_nodes import PASSWORD, Node, command, node_client, wait_until


def _masters(nodes: list[Node], certs: ServerCerts) -> dict[int, list[tuple[int, int]]]:
    """Master port -> its slot ranges."""
    masters: dict[int, list[tuple[int, int]]] = {}
    for start, end, master, *_ in command(node_client(nodes[0].port, certs), "CLUSTER", "SLOTS"):
        masters.setdefault(int(master[1]), []).append((int(start), int(end)))
    return masters


def test_generated_config_forms_a_cluster_and_survives_a_master_failure(
    cluster: tuple[list[Node], ServerCerts],
) -> None:
    nodes, certs = cluster
    masters = _masters(nodes, certs)
    assert len(masters) == 3
    info = command(node_client(nodes[0].port, certs), "CLUSTER", "INFO").decode()
    assert "cluster_size:3" in info
    assert "cluster_known_nodes:6" in info

    victim = next(iter(masters))
    ranges = masters[victim]
    acknowledged: dict[str, str] = {}
    direct = node_client(victim, certs, user="default")  # an application writes
    for index in range(2000):
        key = f"key:{index}"
        if any(start <= key_slot(key.encode()) <= end for start, end in ranges):
            direct.set(key, f"value-{index}")
            acknowledged[key] = f"value-{index}"
    # WAIT on the same connection: every write above reached the master's replica (a busy machine
    # may need more than one WAIT for a replica that is still catching up).
    wait_until(lambda: command(direct, "WAIT", 1, 1000) == 1, 60, "the replica to acknowledge the writes")
    assert len(acknowledged) > 300

    replica_port = next(
        n.port
        for n in nodes
        if n.port != victim
        and command(node_client(n.port, certs), "ROLE")[0] == b"slave"
        and int(command(node_client(n.port, certs), "ROLE")[2]) == victim
    )
    victim_node = next(n for n in nodes if n.port == victim)
    killed_at = time.monotonic()
    victim_node.process.send_signal(signal.SIGKILL)
    victim_node.process.wait(timeout=10)

    def promoted() -> bool:
        return bool(command(node_client(replica_port, certs), "ROLE")[0] == b"master")

    # Promotion follows node-timeout (the master is marked failed) plus a short election; the
    # figure is printed, not asserted: how long it takes on a loaded machine is not correctness.
    wait_until(promoted, 12 * DEFAULT_NODE_TIMEOUT_MS / 1000, "the replica to be promoted")
    failover_s = time.monotonic() - killed_at
    print(
        f"\nredis failover: replica promoted {failover_s:.2f}s after SIGKILL "
        f"(node timeout {DEFAULT_NODE_TIMEOUT_MS} ms)"
    )

    survivors = [n for n in nodes if n.port != victim]
    wait_until(
        lambda: b"cluster_state:ok" in command(node_client(survivors[0].port, certs), "CLUSTER", "INFO"),
        20,
        "cluster_state:ok after failover",
    )
    client = ClusterClient(
        host="127.0.0.1",
        port=survivors[0].port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_check_hostname=False,
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
