"""Redis Cluster "pods" on loopback: each node has its own 127.x.y.z address (not just a port),
a stable DNS name, a data directory that survives restarts, and is started by the pods' own
start-up script (`components/data/scripts/redis_start.sh`) with the generated redis.conf and ACL
users, TLS everywhere.

Names resolve through /etc/hosts inside a private mount namespace (`unshare --mount` with a
bind-mounted hosts file), so the scripts' own `getent` lookups see where each pod lives now,
and nothing outside the test changes. Needs root (as CI and `make test` run).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as ClusterClient

from components.data.redis_cluster import CLUSTER_SCRIPT, START_SCRIPT
from components.data.redis_config import RedisNodeConfig, RedisTls, render_auth_conf, render_redis_conf
from tests.realservers.certs import ServerCerts, make_certs
from tests.realservers.ports import free_port
from tests.realservers.redis_nodes import PASSWORD, USERS
from tests.tools_on_path import require_tool

DOMAIN = "redis-headless.sophia-data.svc"


def pod_name(ordinal: int) -> str:
    return f"redis-{ordinal}.{DOMAIN}"


@dataclass
class Pod:
    ordinal: int
    ip: str
    data: Path
    process: subprocess.Popen[bytes] | None = None
    up: bool = False

    @property
    def name(self) -> str:
        return pod_name(self.ordinal)


@dataclass
class PodSet:
    """Pods sharing one port (each on its own address), a hosts file, a CA and the ACL users."""

    root: Path
    certs: ServerCerts
    port: int
    bus_port: int
    subnet: str
    pods: dict[int, Pod] = field(default_factory=dict)
    _next_host: int = 10

    @property
    def hosts_file(self) -> Path:
        return self.root / "hosts"

    @property
    def tls_dir(self) -> Path:
        """The certificate Secret as the kubelet mounts it: files behind a `..data` symlink it swaps."""
        return self.root / "tls"

    def mount_certificate(self, certs: ServerCerts) -> None:
        """Put `certs` in the mounted Secret the way the kubelet updates one: a new directory, then
        an atomic rename of the `..data` link."""
        version = self.tls_dir / f"..{time.monotonic_ns()}"
        version.mkdir(parents=True)
        for source, name in ((certs.cert, "tls.crt"), (certs.key, "tls.key"), (certs.ca, "ca.crt")):
            (version / name).write_bytes(source.read_bytes())
        link = self.tls_dir / "..data_tmp"
        link.symlink_to(version.name)
        link.rename(self.tls_dir / "..data")
        for name in ("tls.crt", "tls.key", "ca.crt"):
            if not (self.tls_dir / name).is_symlink():
                (self.tls_dir / name).symlink_to(f"..data/{name}")

    def new_address(self) -> str:
        self._next_host += 1
        return f"{self.subnet}.{self._next_host}"

    def write_hosts(self) -> None:
        """What the cluster DNS answers now: every running pod's name -> its current address."""
        lines = ["127.0.0.1 localhost"]
        lines += [f"{p.ip} {p.name}" for p in self.pods.values() if p.up]
        self.hosts_file.write_text("\n".join(lines) + "\n")

    def in_namespace(self, *command: str) -> list[str]:
        """`command` in a private mount namespace where /etc/hosts is this set's hosts file."""
        script = f'mount --bind "{self.hosts_file}" /etc/hosts && exec "$@"'
        return ["unshare", "--mount", "sh", "-c", script, "sh", *command]

    def start(self, ordinal: int, ip: str | None = None, *, empty: bool = False) -> Pod:
        """Start pod `ordinal` (on a new address unless `ip`), keeping its data directory unless `empty`."""
        pod = self.pods.get(ordinal)
        if pod is None or empty:
            data = self.root / f"pod-{ordinal}-{time.monotonic_ns()}"
            data.mkdir()
            pod = Pod(ordinal, ip or self.new_address(), data)
        else:
            pod.ip = ip or self.new_address()
        self.pods[ordinal] = pod
        pod.up = True
        self.write_hosts()
        conf = pod.data / "redis.conf"
        conf.write_text(
            render_redis_conf(
                RedisNodeConfig(
                    data_dir=str(pod.data),
                    auth_include=str(self.root / "auth.conf"),
                    tls=RedisTls(
                        str(self.tls_dir / "tls.crt"), str(self.tls_dir / "tls.key"), str(self.tls_dir / "ca.crt")
                    ),
                    port=self.port,
                    bus_port=self.bus_port,
                )
            )
        )
        env = {
            "PATH": os.environ["PATH"],
            "POD_IP": pod.ip,
            "ANNOUNCE_HOSTNAME": pod.name,
            "REDIS_CONF": str(conf),
            "DATA_DIR": str(pod.data),
            "RESOLVE_SECONDS": "20",
        }
        log = (pod.data / "redis.log").open("ab")
        # The pods' start-up script; `--bind` only because here every pod shares one host.
        command = self.in_namespace("sh", str(START_SCRIPT), "--bind", pod.ip)
        pod.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return pod

    def stop(self, ordinal: int) -> None:
        pod = self.pods[ordinal]
        if pod.process is not None and pod.process.poll() is None:
            pod.process.terminate()
            pod.process.wait(timeout=20)
        pod.process = None
        pod.up = False
        self.write_hosts()

    def remove(self, ordinal: int) -> None:
        self.stop(ordinal)
        del self.pods[ordinal]
        self.write_hosts()

    def client(self, ordinal: int, user: str = "admin") -> redis.Redis:
        password = {"default": USERS.app, "admin": USERS.admin, "exporter": USERS.exporter, "backup": USERS.backup}
        return redis.Redis(
            host=self.pods[ordinal].ip,
            port=self.port,
            username=user,
            password=password[user],
            ssl=True,
            ssl_ca_certs=str(self.certs.ca),
            ssl_check_hostname=False,
            socket_timeout=5,
            socket_connect_timeout=2,
        )

    def cluster_client(self, ordinal: int = 0) -> ClusterClient:
        """An application's cluster client (the default user), reaching nodes by address."""
        pod = self.pods[ordinal]
        return ClusterClient(
            startup_nodes=[ClusterNode(pod.ip, self.port)],  # type: ignore[no-untyped-call]
            password=PASSWORD,
            ssl=True,
            ssl_ca_certs=str(self.certs.ca),
            ssl_check_hostname=False,
            # The nodes announce DNS names for redirects; this client uses addresses instead.
            address_remap=self.remap,
            socket_timeout=5,
        )

    def remap(self, address: tuple[str, int]) -> tuple[str, int]:
        host, port = address
        by_name = {p.name: p.ip for p in self.pods.values()}
        return by_name.get(host, host), port

    def cluster_script(self, masters: int, replicas: int, ordinals: list[int]) -> subprocess.CompletedProcess[str]:
        """The cluster Job's reconcile step, as the Job runs it, over the pods `ordinals`."""
        env = {
            "PATH": os.environ["PATH"],
            "MASTERS": str(masters),
            "REPLICAS_PER_MASTER": str(replicas),
            "PORT": str(self.port),
            "REDIS_HOSTS": " ".join(pod_name(o) for o in ordinals),
            "REDIS_CLI_OPTIONS": f"--tls --cacert {self.certs.ca} --user admin",
            "REDISCLI_AUTH": USERS.admin,
            "TIMEOUT_SECONDS": "300",
        }
        command = self.in_namespace("bash", str(CLUSTER_SCRIPT))
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)

    def nodes(self, ordinal: int = 0) -> list[list[str]]:
        raw = command(self.client(ordinal), "CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return [line.split() for line in text.splitlines() if line.strip()]


def command(client: redis.Redis, *args: object) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def wait_until(check: Callable[[], object], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def cluster_ok(pods: PodSet, ordinal: int) -> bool:
    info = command(pods.client(ordinal), "CLUSTER", "INFO")
    return b"cluster_state:ok" in info


def answers(pods: PodSet, ordinal: int) -> bool:
    return bool(pods.client(ordinal).ping())


def healthy(pods: PodSet, ordinal: int) -> bool:
    """cluster_state:ok is not enough: a node that cannot reach anyone may never flag a peer as failing.
    Here the node also has a live bus link to every running pod at its current address, no peer is
    flagged failing, and a replica's replication link to its master is up."""
    if not cluster_ok(pods, ordinal):
        return False
    current = {p.ip for p in pods.pods.values() if p.up}
    seen = set()
    for fields in pods.nodes(ordinal):
        flags = fields[2].split(",")
        if "fail" in flags or "fail?" in flags or "handshake" in flags or fields[7] != "connected":
            return False
        seen.add(fields[1].split(":")[0])
    if seen != current:
        return False
    replication = pods.client(ordinal).info("replication")
    return replication.get("role") == "master" or replication.get("master_link_status") == "up"


@pytest.fixture
def pod_set(tmp_path: Path) -> Iterator[PodSet]:
    for tool in ("redis-server", "redis-cli", "unshare", "getent", "openssl"):
        require_tool(tool)
    if os.geteuid() != 0:
        pytest.fail("the Redis pod tests bind-mount a private /etc/hosts: they need root (as CI runs)")
    # A /24 of loopback addresses of its own, so concurrent runs do not meet.
    subnet = f"127.{random.randint(16, 250)}.{random.randint(1, 250)}"
    certs = make_certs(tmp_path, ip_addresses=[f"{subnet}.{n}" for n in range(1, 255)], dns_names=[f"*.{DOMAIN}"])
    pods = PodSet(tmp_path, certs, free_port(), free_port(), subnet)
    (tmp_path / "auth.conf").write_text(render_auth_conf(USERS))
    pods.mount_certificate(certs)
    pods.write_hosts()
    try:
        yield pods
    finally:
        for ordinal in list(pods.pods):
            pod = pods.pods[ordinal]
            if pod.process is not None and pod.process.poll() is None:
                pod.process.kill()
                pod.process.wait(timeout=10)
