"""A PostgreSQL 15 primary and a streaming replica on 127.0.0.1, configured with the settings
`PostgresCluster` gives CloudNativePG (quorum synchronous replication, TLS verified), started and
stopped by the tests; both run as the postgres user when the tests run as root."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.data.postgres_config import CNPG_MANAGED, replication_parameters, standby_names, synchronous_replication
from tests.realservers.certs import make_certs
from tests.realservers.ports import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Instance:
    data: Path
    port: int
    socket_dir: Path
    log: Path

    def ctl(self, *args: str) -> list[str]:
        return as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), *args)


def as_postgres(*args: str) -> list[str]:
    """initdb refuses root: when root, run as the postgres system user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(as_postgres(*args), capture_output=True, text=True, input=input, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    return result


def sql(instance: Instance, query: str) -> str:
    result = run(
        str(BIN / "psql"),
        "-h",
        str(instance.socket_dir),
        "-p",
        str(instance.port),
        "-d",
        "postgres",
        "-At",
        "-c",
        query,
    )
    return str(result.stdout).strip()


def conf(instance: Instance, extra: dict[str, str]) -> str:
    settings = {
        **CNPG_MANAGED,
        **replication_parameters(),
        "listen_addresses": "'127.0.0.1'",
        "port": str(instance.port),
        "unix_socket_directories": f"'{instance.socket_dir}'",
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        "ssl_ca_file": "'ca.crt'",
        "fsync": "on",
        **extra,
    }
    return "".join(f"{k} = {_quote(v)}\n" for k, v in settings.items())


def _quote(value: str) -> str:
    if value.startswith("'") or value.replace(".", "").isdigit() or value in ("on", "off", "logical", "replica"):
        return value
    return f"'{value}'"


def start(instance: Instance) -> None:
    result = subprocess.run(
        instance.ctl("-l", str(instance.log), "-w", "-t", "60", "start"), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        log = instance.log.read_text()[-600:] if instance.log.exists() else ""
        pytest.fail(f"postgres on {instance.port} did not start: {result.stderr.strip()} {log}")


def stop(instance: Instance) -> None:
    """Stop the server; if pg_ctl cannot, kill the postmaster so no server outlives the test."""
    subprocess.run(instance.ctl("-m", "immediate", "-t", "10", "stop"), capture_output=True, check=False)
    kill(instance)


def kill(instance: Instance) -> None:
    """SIGKILL the postmaster: a crash, not a shutdown."""
    pid_file = instance.data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def conninfo(source: Instance, name: str) -> str:
    """How a standby named `name` streams from `source`: TLS, the server's CA verified."""
    return (
        f"host=127.0.0.1 port={source.port} user=postgres sslmode=verify-ca "
        f"sslrootcert={source.data / 'ca.crt'} application_name={name}"
    )


def follow(source: Instance, standby: Instance, name: str) -> None:
    """Turn a cleanly shut down server into a standby of `source` with no new copy: what a demoted
    primary does, once its last checkpoint is part of `source`'s history."""
    run("touch", str(standby.data / "standby.signal"))
    run(
        "sh",
        "-c",
        f"cat >> {standby.data}/postgresql.auto.conf",
        input=f"primary_conninfo = '{conninfo(source, name)}'\n",
    )
    start(standby)


def last_checkpoint(instance: Instance) -> str:
    """`Latest checkpoint location` of a stopped server (pg_controldata)."""
    result = run(str(BIN / "pg_controldata"), "-D", str(instance.data))
    for line in result.stdout.splitlines():
        if line.startswith("Latest checkpoint location:"):
            return line.split(":", 1)[1].strip()
    pytest.fail(f"no checkpoint location in pg_controldata's output: {result.stdout[-300:]}")


def standby_of(source: Instance, standby: Instance, name: str) -> None:
    """A fresh copy of `source` in `standby.data`, streaming from it over TLS as `name`."""
    run(
        str(BIN / "pg_basebackup"),
        "-d",
        conninfo(source, name),
        "-D",
        str(standby.data),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
    )
    run("sh", "-c", f"cat >> {standby.data}/postgresql.conf", input=conf(standby, {}))
    start(standby)


def wait_for(check: Callable[[], object], timeout: float, what: str = "condition") -> float:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.CalledProcessError):
            if check():
                return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{what} not met within {timeout}s")


@contextlib.contextmanager
def primary_and_replica(*, synchronous_replica: bool = True) -> Iterator[tuple[Instance, Instance, Path]]:
    """A primary and a streaming replica. `synchronous_replica`: the replica is one of the quorum's
    standbys, as prod's local read replicas are; otherwise it streams asynchronously, as the DR
    region's does (prod's quorum names only its own instances)."""
    for binary in ("initdb", "pg_ctl", "pg_basebackup", "pgbench", "psql"):
        if not (BIN / binary).exists():
            pytest.fail(f"{BIN / binary} is missing: `make test` installs postgresql-15")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.fail("running as root needs runuser to start PostgreSQL as the postgres user")
    # Not under pytest's tmp_path: its parents are private to root, and the servers run as postgres.
    tmp_path = Path(tempfile.mkdtemp(prefix="sophia-pg-"))
    tmp_path.chmod(0o755)
    root = tmp_path / "pg"
    root.mkdir()
    certs = make_certs(tmp_path)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary = Instance(root / "primary", free_port(), root, root / "primary.log")
    replica = Instance(root / "replica", free_port(), root, root / "replica.log")
    synchronous = synchronous_replication(read_replicas=1)
    run(str(BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    for name in ("server.crt", "server.key", "ca.crt"):
        run("cp", str(tmp_path / name if name != "server.crt" else certs.cert), str(primary.data / name))
    run("chmod", "0600", str(primary.data / "server.key"))
    names = standby_names(synchronous) if synchronous_replica else ""
    settings = {"synchronous_standby_names": f"'{names}'", "synchronous_commit": "on"}
    run("sh", "-c", f"cat >> {primary.data}/postgresql.conf", input=conf(primary, settings))
    hba = "hostssl replication postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 trust\n"
    run("sh", "-c", f"cat >> {primary.data}/pg_hba.conf", input=hba)
    try:
        start(primary)
        standby_of(primary, replica, "replica1")
        yield primary, replica, root
    finally:
        # Primary first: stopping the standby first would leave a synchronous commit waiting.
        for instance in (primary, replica):
            stop(instance)
        shutil.rmtree(tmp_path, ignore_errors=True)
