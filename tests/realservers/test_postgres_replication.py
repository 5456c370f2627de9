"""The PostgreSQL settings `PostgresCluster` generates, on a real primary and streaming replica on 127.0.0.1.

Under pgbench load the measured replay lag must stay under the 5 s target, the standby must be
a synchronous (quorum) standby, and after promotion it must accept writes. Replication runs
over TLS with the server certificate verified.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.data.postgres_config import (
    CNPG_MANAGED,
    LAG_TARGET_S,
    replication_parameters,
    standby_names,
    synchronous_replication,
)
from tests.realservers.certs import make_certs
from tests.realservers.ports import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Instance:
    data: Path
    port: int
    socket_dir: Path


def _as_postgres(*args: str) -> list[str]:
    """initdb refuses root: when root, run as the postgres system user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def _run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_as_postgres(*args), capture_output=True, text=True, input=input, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    return result


def _sql(instance: Instance, query: str) -> str:
    result = _run(
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


def _conf(instance: Instance, extra: dict[str, str]) -> str:
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


@pytest.fixture
def servers() -> Iterator[tuple[Instance, Instance]]:
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
    primary = Instance(root / "primary", free_port(), root)
    replica = Instance(root / "replica", free_port(), root)
    synchronous = synchronous_replication(read_replicas=1)
    _run(str(BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    for name in ("server.crt", "server.key", "ca.crt"):
        _run("cp", str(tmp_path / name if name != "server.crt" else certs.cert), str(primary.data / name))
    _run("chmod", "0600", str(primary.data / "server.key"))
    conf = _conf(primary, {"synchronous_standby_names": f"'{standby_names(synchronous)}'", "synchronous_commit": "on"})
    _run("sh", "-c", f"cat >> {primary.data}/postgresql.conf", input=conf)
    hba = "hostssl replication postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 trust\n"
    _run("sh", "-c", f"cat >> {primary.data}/pg_hba.conf", input=hba)
    started: list[Instance] = []
    try:
        _run(str(BIN / "pg_ctl"), "-D", str(primary.data), "-l", str(root / "primary.log"), "-w", "start")
        started.append(primary)
        conninfo = (
            f"host=127.0.0.1 port={primary.port} user=postgres sslmode=verify-ca "
            f"sslrootcert={primary.data / 'ca.crt'} application_name=replica1"
        )
        _run(str(BIN / "pg_basebackup"), "-d", conninfo, "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast")
        _run("sh", "-c", f"cat >> {replica.data}/postgresql.conf", input=_conf(replica, {}))
        _run(str(BIN / "pg_ctl"), "-D", str(replica.data), "-l", str(root / "replica.log"), "-w", "start")
        started.append(replica)
        yield primary, replica
    finally:
        # Primary first: stopping the standby first would leave a synchronous commit waiting.
        for instance in started:
            _stop(instance)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _stop(instance: Instance) -> None:
    """Stop the server; if pg_ctl cannot, kill the postmaster so no server outlives the test."""
    subprocess.run(
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(instance.data), "-m", "immediate", "-t", "10", "stop"),
        capture_output=True,
        check=False,
    )
    pid_file = instance.data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def test_replica_stays_within_the_lag_target_under_load_and_promotes(servers: tuple[Instance, Instance]) -> None:
    primary, replica = servers
    query = "SELECT application_name, sync_state, ssl FROM pg_stat_replication JOIN pg_stat_ssl USING (pid)"
    # A standby counts for the quorum (ANY 1) once it streams; over TLS.
    _wait_for(lambda: _sql(primary, query) == "replica1|quorum|t", 15)

    _run(str(BIN / "pgbench"), "-h", str(primary.socket_dir), "-p", str(primary.port), "-i", "-s", "5", "postgres")
    lags: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value = _sql(primary, "SELECT COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication")
            if value:
                lags.append(float(value))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        bench = _run(
            str(BIN / "pgbench"),
            "-h",
            str(primary.socket_dir),
            "-p",
            str(primary.port),
            "-c",
            "4",
            "-j",
            "2",
            "-T",
            "15",
            "postgres",
        )
    finally:
        done.set()
        sampler.join()
    tps = next(line for line in str(bench.stdout).splitlines() if line.startswith("tps"))
    assert len(lags) > 20
    worst = max(lags)
    print(f"\npostgres replay lag under pgbench ({tps.strip()}): max {worst:.3f}s over {len(lags)} samples")
    assert worst < LAG_TARGET_S

    primary_rows = _sql(primary, "SELECT sum(delta), count(*) FROM pgbench_history")
    _wait_for(lambda: _sql(replica, "SELECT sum(delta), count(*) FROM pgbench_history") == primary_rows, 10)

    assert _sql(replica, "SELECT pg_is_in_recovery()") == "t"
    started = time.monotonic()
    assert _sql(replica, "SELECT pg_promote(wait => true)") == "t"
    print(f"postgres promotion took {time.monotonic() - started:.2f}s")
    assert _sql(replica, "SELECT pg_is_in_recovery()") == "f"
    # The new primary has no standby left. With dataDurability "preferred" the operator drops the
    # synchronous requirement rather than block writes; do what it does.
    _sql(replica, "ALTER SYSTEM SET synchronous_standby_names = ''")
    _sql(replica, "SELECT pg_reload_conf()")
    _wait_for(lambda: _sql(replica, "SHOW synchronous_standby_names") == "", 5)
    _sql(
        replica,
        "SET statement_timeout = '5s'; CREATE TABLE after_failover (id int); INSERT INTO after_failover VALUES (1)",
    )
    assert _sql(replica, "SELECT count(*) FROM after_failover") == "1"


def _wait_for(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"condition not met within {timeout}s")
