"""The Postgres restore check, for real: a `postgresql-15` primary on 127.0.0.1 archives WAL and
takes a base backup with barman-cloud (the commands CloudNativePG runs) into an S3 server on
127.0.0.1 (moto); the job's own script restores the latest backup into a scratch instance,
verifies it against the source's figures, and its report step pushes the result to a real
Pushgateway on 127.0.0.1.

Then the WAL archive loses the segments written after the base backup: the same check must
fail, report `success 0`, and keep the time of the last success.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.backup.restore_checks import POSTGRES_CHECK_SCRIPT, PUSH_RESULT_SCRIPT
from tests.realservers.ports import free_port
from tests.tools_on_path import require_tool

BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET = "sophia-test-backups"
DESTINATION = f"s3://{BUCKET}/postgres"
SERVER = "postgres"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_DEFAULT_REGION": "us-west-1",
}


@dataclass
class Environment:
    root: Path
    s3_url: str
    pushgateway_url: str
    pg_port: int
    socket_dir: Path

    @property
    def data(self) -> Path:
        return self.root / "primary"

    @property
    def barman_options(self) -> str:
        return f"--endpoint-url {self.s3_url}"

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "HOME": str(self.root), **AWS_ENV, **extra}


def as_postgres(*args: str, env: dict[str, str]) -> list[str]:
    """PostgreSQL refuses root: when root, run as the postgres system user, with exactly `env`."""
    assignments = [f"{k}={v}" for k, v in env.items()]
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", "env", "-i", *assignments, *args]
    return ["env", "-i", *assignments, *args]


def run(env: Environment, *args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    command = as_postgres(*args, env=env.env(**extra))
    result = subprocess.run(command, capture_output=True, text=True, input=stdin, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()[-1500:]}")
    return result


def sql(env: Environment, query: str) -> str:
    psql = [str(BIN / "psql"), "-h", str(env.socket_dir), "-p", str(env.pg_port), "-d", "postgres", "-At", "-c"]
    return run(env, *psql, query).stdout.strip()


def s3(env: Environment) -> Any:
    return boto3.client("s3", endpoint_url=env.s3_url, region_name=AWS_ENV["AWS_DEFAULT_REGION"], **_keys())


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server for {url} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
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


def stop_postgres(env: Environment, data: Path) -> None:
    """Stop the server; if pg_ctl cannot, kill the postmaster so no server outlives the test."""
    stop = [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-t", "10", "stop"]
    subprocess.run(as_postgres(*stop, env=env.env()), capture_output=True, check=False)
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


@pytest.fixture
def environment() -> Iterator[Environment]:
    for binary in ("initdb", "pg_ctl", "psql"):
        if not (BIN / binary).exists():
            pytest.fail(f"{BIN / binary} is missing: `make test` installs postgresql-15")
    for tool in ("barman-cloud-backup", "barman-cloud-wal-archive", "barman-cloud-restore", "curl"):
        require_tool(tool)
    moto = str(Path(sys.executable).parent / "moto_server")
    pushgateway = require_tool("prometheus-pushgateway")
    # Not under pytest's tmp_path: its parents are private to root, and the servers run as postgres.
    root = Path(tempfile.mkdtemp(prefix="sophia-restore-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    s3_port, push_port = free_port(), free_port()
    env = Environment(root, f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{push_port}", free_port(), root)
    try:
        with (
            server([moto, "-H", "127.0.0.1", "-p", str(s3_port)], f"{env.s3_url}/moto-api/"),
            server(
                [pushgateway, f"--web.listen-address=127.0.0.1:{push_port}", "--log.level=warn"],
                f"{env.pushgateway_url}/-/ready",
            ),
        ):
            s3(env).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-1"})
            run(env, str(BIN / "initdb"), "-D", str(env.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            # WAL archiving as CloudNativePG configures it: barman-cloud-wal-archive per segment.
            archive = f"barman-cloud-wal-archive {env.barman_options} {DESTINATION} {SERVER} %p"
            conf = (
                f"listen_addresses = '127.0.0.1'\nport = {env.pg_port}\n"
                f"unix_socket_directories = '{env.socket_dir}'\nwal_level = replica\n"
                f"archive_mode = on\narchive_command = '{archive}'\narchive_timeout = 60\n"
            )
            run(env, "sh", "-c", f"cat >> {env.data}/postgresql.conf", stdin=conf)
            run(env, "sh", "-c", f"cat >> {env.data}/pg_hba.conf", stdin="host all all 127.0.0.1/32 trust\n")
            try:
                run(env, str(BIN / "pg_ctl"), "-D", str(env.data), "-l", str(root / "primary.log"), "-w", "start")
                yield env
            finally:
                stop_postgres(env, env.data)
                stop_postgres(env, root / "scratch" / "pgdata")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def restore_check(env: Environment) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The job's two steps, as its containers run them."""
    settings = {
        "SOURCE_DSN": f"host=127.0.0.1 port={env.pg_port} user=postgres dbname=postgres",
        "BARMAN_DESTINATION": DESTINATION,
        "SERVER_NAME": SERVER,
        "BARMAN_CLOUD_OPTIONS": env.barman_options,
        "RESULT_FILE": str(env.root / "result.prom"),
        "SCRATCH_DIR": str(env.root / "scratch"),
        "PG_BIN": str(BIN),
        "ARCHIVE_TIMEOUT_SECONDS": "120",
        "STORE": "postgres",
        "PUSHGATEWAY_URL": env.pushgateway_url,
    }
    check = subprocess.run(
        as_postgres("bash", str(POSTGRES_CHECK_SCRIPT), env=env.env(**settings)),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = subprocess.run(
        as_postgres("sh", str(PUSH_RESULT_SCRIPT), env=env.env(**settings)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return check, report


def pushed(env: Environment) -> dict[str, float]:
    with urllib.request.urlopen(f"{env.pushgateway_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(sophia_restore_verification_\w+)\{(.*)\} (\S+)", line)
        if match and 'store="postgres"' in match.group(2) and 'job="restore-verification"' in match.group(2):
            found[match.group(1).removeprefix("sophia_restore_verification_")] = float(match.group(3))
    return found


def test_latest_backup_restores_verifies_and_reports(environment: Environment) -> None:
    env = environment
    sql(env, "CREATE TABLE orders (id serial PRIMARY KEY, note text)")
    sql(env, "INSERT INTO orders (note) SELECT 'before backup ' || g FROM generate_series(1, 20000) g")
    sql(env, "CREATE TABLE sessions (id bigint PRIMARY KEY)")
    sql(env, "INSERT INTO sessions SELECT generate_series(1, 5000)")
    # The nightly base backup, as the ScheduledBackup runs it.
    run(
        env,
        "barman-cloud-backup",
        *env.barman_options.split(),
        "-h",
        "127.0.0.1",
        "-p",
        str(env.pg_port),
        "-U",
        "postgres",
        DESTINATION,
        SERVER,
    )
    # Writes after the base backup reach the restore only through WAL replay.
    sql(env, "INSERT INTO orders (note) SELECT 'after backup ' || g FROM generate_series(1, 7000) g")
    sql(env, "DELETE FROM sessions WHERE id <= 1000")

    check, report = restore_check(env)
    assert report.returncode == 0, check.stderr + report.stderr
    metrics = pushed(env)
    assert metrics["success"] == 1
    print(f"\nrestore check passed in {metrics['duration_seconds']:.0f} s: {metrics['restored_items']:.0f} rows")
    # 27,000 orders + 4,000 sessions: the deletes and the after-backup inserts were replayed.
    assert metrics["restored_items"] == 31000
    assert metrics["last_success_timestamp_seconds"] == metrics["last_run_timestamp_seconds"]
    assert "marker check-" in check.stderr
    # The scratch instance is gone, and so is its data.
    assert not (env.root / "scratch" / "pgdata").exists()
    first_success = metrics["last_success_timestamp_seconds"]

    # The archive loses every WAL segment written after the base backup: the chain is broken.
    client = s3(env)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"postgres/{SERVER}/wals/")
    segments = sorted(o["Key"] for o in listed["Contents"] if not o["Key"].endswith(".backup"))
    backup_label = next(o["Key"] for o in listed["Contents"] if o["Key"].endswith(".backup"))
    start_segment = Path(backup_label).name.split(".")[0]
    lost = [key for key in segments if Path(key).name.split(".")[0] > start_segment]
    assert lost, segments
    client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in lost]})
    time.sleep(1.1)  # the next run's timestamps must differ from the first run's

    check, report = restore_check(env)
    assert report.returncode != 0, "a failed check must fail the Job"
    assert "marker" in check.stderr, check.stderr
    assert "missing" in check.stderr, check.stderr
    metrics = pushed(env)
    assert metrics["success"] == 0
    assert metrics["last_run_timestamp_seconds"] > first_success
    assert metrics["last_success_timestamp_seconds"] == first_success


REPLICA_BUCKET = "sophia-test-backups-replica"


def run_check(env: Environment, **settings: str) -> tuple[subprocess.CompletedProcess[str], dict[str, float]]:
    """The check step alone, with `settings` over the primary-region ones; and the metrics it wrote."""
    result_file = env.root / "result.prom"
    result_file.unlink(missing_ok=True)
    base = {
        "BARMAN_DESTINATION": DESTINATION,
        "SERVER_NAME": SERVER,
        "BARMAN_CLOUD_OPTIONS": env.barman_options,
        "RESULT_FILE": str(result_file),
        "SCRATCH_DIR": str(env.root / "scratch"),
        "PG_BIN": str(BIN),
        "ARCHIVE_TIMEOUT_SECONDS": "120",
        "STORE": "postgres",
    }
    check = subprocess.run(
        as_postgres("bash", str(POSTGRES_CHECK_SCRIPT), env=env.env(**{**base, **settings})),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    metrics = {}
    for line in result_file.read_text().splitlines() if result_file.exists() else []:
        if line.startswith("sophia_restore_verification_"):
            name, value = line.split()
            metrics[name.removeprefix("sophia_restore_verification_")] = float(value)
    return check, metrics


def test_dr_region_verifies_the_replicated_copy_against_the_primarys_figures(environment: Environment) -> None:
    """The primary's check publishes its figures (marker, row counts) next to the backups; S3
    replication copies everything; the DR region's check restores from the copy alone, reaching
    no database, and must find the marker and the counts. A copy missing the WAL fails it."""
    env = environment
    sql(env, "CREATE TABLE orders (id serial PRIMARY KEY, note text)")
    sql(env, "INSERT INTO orders (note) SELECT 'before backup ' || g FROM generate_series(1, 3000) g")
    run(env, "barman-cloud-backup", *env.barman_options.split(), "-h", "127.0.0.1", "-p", str(env.pg_port),
        "-U", "postgres", DESTINATION, SERVER)  # fmt: skip
    sql(env, "INSERT INTO orders (note) SELECT 'after backup ' || g FROM generate_series(1, 1500) g")

    figures = env.root / "figures"
    primary, metrics = run_check(
        env,
        SOURCE_DSN=f"host=127.0.0.1 port={env.pg_port} user=postgres dbname=postgres",
        FIGURES_DIR=str(figures),
    )
    assert metrics["success"] == 1, primary.stderr
    published = (figures / "figures").read_text().splitlines()
    assert published[0].startswith("nonce|check-")
    assert "public.orders|4500" in published

    # S3 replication: every object, under the same key, in the replica bucket.
    client = s3(env)
    client.create_bucket(Bucket=REPLICA_BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-1"})
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    for key in keys:
        client.copy_object(Bucket=REPLICA_BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key})
    # The primary keeps writing: the copy's figures are what its check saw, not today's counts.
    sql(env, "INSERT INTO orders (note) SELECT 'later ' || g FROM generate_series(1, 10) g")

    replica = f"s3://{REPLICA_BUCKET}/postgres"
    dr_settings = {"FIGURES_FILE": str(figures / "figures"), "BARMAN_DESTINATION": replica}
    dr, metrics = run_check(env, **dr_settings)
    assert metrics["success"] == 1, dr.stderr
    assert metrics["restored_items"] == 4500
    assert published[0].removeprefix("nonce|") in dr.stderr

    # A copy whose WAL stops at the base backup: the marker is not there, the check fails.
    listed = client.list_objects_v2(Bucket=REPLICA_BUCKET, Prefix=f"postgres/{SERVER}/wals/")["Contents"]
    label = next(o["Key"] for o in listed if o["Key"].endswith(".backup"))
    start = Path(label).name.split(".")[0]
    lost = [o["Key"] for o in listed if not o["Key"].endswith(".backup") and Path(o["Key"]).name.split(".")[0] > start]
    assert lost
    client.delete_objects(Bucket=REPLICA_BUCKET, Delete={"Objects": [{"Key": key} for key in lost]})
    dr, metrics = run_check(env, **dr_settings)
    assert metrics["success"] == 0
    assert "missing" in dr.stderr, dr.stderr
