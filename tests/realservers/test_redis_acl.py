"""Each Redis ACL user can do its job on the real server, and nothing more.

The six-node TLS cluster with the generated users (`render_auth_conf`): the applications'
`default` user works the keyspace through a cluster client but runs no admin or dangerous
command; `exporter` runs what redis_exporter issues and writes nothing; `backup` does what the
snapshot job does (find masters, count keys, fetch an RDB over the replication protocol) and reads
no key; `replication` is what every replica authenticates with, and reads nothing else.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis
from redis.cluster import RedisCluster as ClusterClient

from tests.realservers.certs import ServerCerts
from tests.realservers.redis_nodes import PASSWORD, USERS, Node, command, node_client, wait_until

APP_DENIED = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("KEYS", "*"),
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("CLUSTER", "RESET"),
    ("CLUSTER", "FORGET", "0" * 40),
    ("CLUSTER", "FAILOVER"),
    ("MONITOR",),
    ("ACL", "SETUSER", "intruder", "on", ">x", "+@all"),
    ("BGSAVE",),
    ("SYNC",),
    ("MIGRATE", "127.0.0.1", "1", "k", "0", "1"),
    ("INFO",),
]
EXPORTER_ALLOWED = [
    ("INFO", "ALL"),
    ("CLUSTER", "INFO"),
    ("CLUSTER", "NODES"),
    ("CLUSTER", "SLOTS"),
    ("SLOWLOG", "LEN"),
    ("SLOWLOG", "GET", "10"),
    ("LATENCY", "LATEST"),
    ("CONFIG", "GET", "maxmemory"),
    ("CLIENT", "SETNAME", "redis_exporter"),
    ("CLIENT", "LIST"),
    ("PING",),
]
WRITES = [
    ("SET", "k", "v"),
    ("DEL", "k"),
    ("FLUSHALL",),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("CLUSTER", "FORGET", "0" * 40),
    ("SHUTDOWN", "NOSAVE"),
    ("EVAL", "return redis.call('set', 'k', 'v')", "1", "k"),
]


def denied(client: redis.Redis, args: tuple[str, ...]) -> bool:
    try:
        command(client, *args)
    except redis.exceptions.NoPermissionError:
        return True
    except redis.ResponseError as error:
        # A script refused inside (the ACL decided), or DEBUG, which the server refuses to anyone
        # (enable-debug-command no) before the ACL is asked.
        return "NOPERM" in str(error) or "permission" in str(error).lower() or "not allowed" in str(error)
    return False


def master_port(nodes: list[Node], certs: ServerCerts) -> int:
    return next(n.port for n in nodes if command(node_client(n.port, certs), "ROLE")[0] == b"master")


def test_applications_work_the_keyspace_and_run_no_admin_or_dangerous_command(
    cluster: tuple[list[Node], ServerCerts],
) -> None:
    nodes, certs = cluster
    app = ClusterClient(
        host="127.0.0.1",
        port=nodes[0].port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_check_hostname=False,
    )
    try:
        app.set("order:1", "paid")
        assert app.get("order:1") == b"paid"
        app.hset("cart:7", mapping={"sku": "42", "qty": "2"})
        assert app.hincrby("cart:7", "qty", 1) == 3
        assert app.expire("order:1", 60)
        with app.pipeline() as pipe:  # type: ignore[no-untyped-call]
            pipe.incr("visits").incr("visits")
            assert pipe.execute() == [1, 2]
        assert app.delete("order:1") == 1
    finally:
        app.close()
    direct = node_client(master_port(nodes, certs), certs, user="default")
    refused = [args for args in APP_DENIED if not denied(direct, args)]
    assert refused == []


def test_the_exporter_reads_what_it_scrapes_and_writes_nothing(cluster: tuple[list[Node], ServerCerts]) -> None:
    nodes, certs = cluster
    exporter = node_client(master_port(nodes, certs), certs, user="exporter")
    for args in EXPORTER_ALLOWED:
        command(exporter, *args)
    assert [args for args in WRITES if not denied(exporter, args)] == []


def test_backup_fetches_an_rdb_and_reads_no_key(cluster: tuple[list[Node], ServerCerts], tmp_path: Path) -> None:
    nodes, certs = cluster
    port = master_port(nodes, certs)
    backup = node_client(port, certs, user="backup")
    assert b"master" in command(backup, "CLUSTER", "NODES")
    assert isinstance(command(backup, "DBSIZE"), int)
    rdb = tmp_path / "dump.rdb"
    fetched = subprocess.run(
        ["redis-cli", "--tls", "--cacert", str(certs.ca), "--user", "backup", "-p", str(port), "--rdb", str(rdb)],
        env={"REDISCLI_AUTH": USERS.backup, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert rdb.read_bytes().startswith(b"REDIS")
    reads = [("GET", "k"), ("KEYS", "*"), ("SCAN", "0"), ("CONFIG", "GET", "dir"), ("INFO",)]
    assert [args for args in [*reads, *WRITES] if not denied(backup, args)] == []


def test_replicas_authenticate_as_replication_which_reads_nothing_else(
    cluster: tuple[list[Node], ServerCerts],
) -> None:
    nodes, certs = cluster
    replica = next(n for n in nodes if command(node_client(n.port, certs), "ROLE")[0] == b"slave")
    wait_until(
        lambda: node_client(replica.port, certs).info("replication")["master_link_status"] == "up",
        30,
        "the replica, authenticated as replication, to sync",
    )
    client = redis.Redis(
        host="127.0.0.1",
        port=nodes[0].port,
        username="replication",
        password=USERS.replication,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_check_hostname=False,
    )
    reads = [("GET", "k"), ("SET", "k", "v"), ("KEYS", "*"), ("CONFIG", "GET", "dir"), ("CLUSTER", "NODES")]
    assert [args for args in reads if not denied(client, args)] == []
