"""The Postgres restore check, for real: a `postgresql-15` primary on 127.0.0.1 archives WAL and
takes a base backup with barman-cloud (the commands CloudNativePG's Barman Cloud plugin runs)
into an S3 server on 127.0.0.1 (moto); the job's own script restores the latest backup into a
scratch instance, verifies it against the source's figures, and its report step pushes the result
to a real Pushgateway on 127.0.0.1.

The primary's data directory is shaped exactly as CloudNativePG leaves it (`cnpg_pgdata`: its
custom.conf, override.conf, pg_hba.conf, pg_ident.conf, a read-only postgresql.auto.conf, all
pointing at /controller), so the backup carries what a real one carries. Only what a pod provides
and this host does not (/controller's certificates, sockets and log directory, the WAL archiver
binary) is given to the running primary as -c options. The check reaches the source as prod's
job does: as `app`, over TLS with `sslmode=verify-full` against the CA of the server certificate
(prod sets `certificates.serverCASecret`, so that CA is the only one there is).

Then the WAL archive loses the segments written after the base backup: the same check must
fail, report `success 0`, and keep the time of the last success.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.backup.restore_checks import POSTGRES_CHECK_SCRIPT, PUSH_RESULT_SCRIPT, SCRIPTS
from components.data.postgres_config import replication_parameters, synchronous_replication
from tests.realservers import cnpg_pgdata
from tests.realservers.certs import make_certs
from tests.realservers.ports import free_port
from tests.realservers.services import basic_auth_web_config, server
from tests.tools_on_path import require_tool

BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET = "sophia-test-backups"
DESTINATION = f"s3://{BUCKET}/postgres"
SERVER = "postgres"
APP_PASSWORD = "app-password-for-the-test"
PUSH_USER, PUSH_PASSWORD = "restore-check", "push-password-for-the-test"
SCRAPE_USER, SCRAPE_PASSWORD = "prometheus", "scrape-password-for-the-test"
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
    def scripts(self) -> Path:
        """The job scripts, copied where the postgres user can read them wherever the checkout lives."""
        return self.root / "scripts"

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


def sql(env: Environment, query: str, database: str = "postgres", user: str = "postgres") -> str:
    """Over the Unix socket, as CloudNativePG's `local all all peer map=local` allows the postgres user."""
    psql = [str(BIN / "psql"), "-h", str(env.socket_dir), "-p", str(env.pg_port), "-U", user, "-d", database]
    return run(env, *psql, "-At", "-c", query).stdout.strip()


def s3(env: Environment) -> Any:
    return boto3.client("s3", endpoint_url=env.s3_url, region_name=AWS_ENV["AWS_DEFAULT_REGION"], **_keys())


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def stop_postgres(env: Environment, data: Path) -> None:
    """Stop the server; if pg_ctl cannot, kill the postmaster so no server outlives the test."""
    stop = [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-t", "10", "stop"]
    subprocess.run(as_postgres(*stop, env=env.env()), capture_output=True, check=False)
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


def primary_settings(env: Environment, certs_dir: Path) -> list[str]:
    """What a CloudNativePG pod gives the server and this host cannot: /controller's certificates,
    socket and log directories, and the WAL archiver (the plugin runs barman-cloud-wal-archive)."""
    archive = f"barman-cloud-wal-archive {env.barman_options} {DESTINATION} {SERVER} %p"
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(env.pg_port),
        "unix_socket_directories": str(env.socket_dir),
        "ssl_cert_file": str(certs_dir / "server.crt"),
        "ssl_key_file": str(certs_dir / "server.key"),
        "ssl_ca_file": str(certs_dir / "ca.crt"),
        "log_directory": str(env.root / "log"),
        "archive_command": archive,
        # The operator's standbys are not here: a commit must not wait for them.
        "synchronous_standby_names": "",
        # Closes the segment holding the check's marker promptly: `app` may not call pg_switch_wal.
        "archive_timeout": "1s",
    }
    return [f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.items()]


@pytest.fixture
def environment() -> Iterator[Environment]:
    for binary in ("initdb", "pg_ctl", "psql", "postgres"):
        if not (BIN / binary).exists():
            pytest.fail(f"{BIN / binary} is missing: `make test` installs postgresql-15")
    for tool in ("barman-cloud-backup", "barman-cloud-wal-archive", "barman-cloud-restore", "curl", "openssl"):
        require_tool(tool)
    moto = str(Path(sys.executable).parent / "moto_server")
    pushgateway = require_tool("prometheus-pushgateway")
    # Not under pytest's tmp_path nor the checkout: either may sit under a directory only root can
    # traverse, and the servers and the job scripts run as postgres.
    root = Path(tempfile.mkdtemp(prefix="sophia-restore-"))
    root.chmod(0o755)
    scripts = root / "scripts"
    scripts.mkdir()
    for script in (POSTGRES_CHECK_SCRIPT, PUSH_RESULT_SCRIPT, SCRIPTS / "restore_result.sh"):
        shutil.copy(script, scripts / script.name)
        (scripts / script.name).chmod(0o644)
    certs_dir = root / "certs"
    certs_dir.mkdir()
    certs = make_certs(certs_dir)
    (root / "log").mkdir()
    if os.geteuid() == 0:
        for path in (root, root / "log", certs_dir, *certs_dir.iterdir()):
            shutil.chown(path, "postgres", "postgres")
    certs.key.chmod(0o600)
    s3_port, push_port = free_port(), free_port()
    env = Environment(root, f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{push_port}", free_port(), root)
    try:
        with (
            server([moto, "-H", "127.0.0.1", "-p", str(s3_port)], f"{env.s3_url}/moto-api/"),
            server(
                [
                    pushgateway,
                    f"--web.listen-address=127.0.0.1:{push_port}",
                    "--log.level=warn",
                    # As the Monitoring component configures it: basic auth on every request.
                    "--web.config.file="
                    + str(
                        basic_auth_web_config(
                            root / "web.yml", {PUSH_USER: PUSH_PASSWORD, SCRAPE_USER: SCRAPE_PASSWORD}
                        )
                    ),
                ],
                f"{env.pushgateway_url}/-/ready",
            ),
        ):
            s3(env).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-1"})
            run(env, str(BIN / "initdb"), "-D", str(env.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            # prod's Cluster: three instances, the generated parameters, quorum synchronous replication.
            cnpg_pgdata.shape(
                env.data,
                cluster=SERVER,
                parameters=replication_parameters(),
                synchronous=synchronous_replication(2),
                instances=3,
            )
            if os.geteuid() == 0:
                for path in env.data.iterdir():
                    shutil.chown(path, "postgres", "postgres")
            options = " ".join(primary_settings(env, certs_dir))
            try:
                start = [str(BIN / "pg_ctl"), "-D", str(env.data), "-l", str(root / "primary.log"), "-o", options]
                run(env, *start, "-w", "start")
                # CloudNativePG's `app` owner of the `app` database; its password in Secret postgres-app.
                sql(env, f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'")
                sql(env, "CREATE DATABASE app OWNER app")
                yield env
            finally:
                stop_postgres(env, env.data)
                stop_postgres(env, root / "scratch" / "pgdata")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def restore_check(env: Environment) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The job's two steps, as its containers run them."""
    settings = {
        # As the CronJob: the app user, TLS verified against the CA of the server certificate.
        "SOURCE_DSN": (
            f"host=localhost port={env.pg_port} user=app dbname=app sslmode=verify-full "
            f"sslrootcert={env.root / 'certs' / 'ca.crt'}"
        ),
        "PGPASSWORD": APP_PASSWORD,
        "SCRATCH_DB": "app",
        "BARMAN_DESTINATION": DESTINATION,
        "SERVER_NAME": SERVER,
        "BARMAN_CLOUD_OPTIONS": env.barman_options,
        "RESULT_FILE": str(env.root / "result.prom"),
        "SCRATCH_DIR": str(env.root / "scratch"),
        "PG_BIN": str(BIN),
        "ARCHIVE_TIMEOUT_SECONDS": "120",
        "STORE": "postgres",
        "PUSHGATEWAY_URL": env.pushgateway_url,
        "PUSH_USER": PUSH_USER,
        "PUSH_PASSWORD": PUSH_PASSWORD,
    }
    check = subprocess.run(
        as_postgres("bash", str(env.scripts / POSTGRES_CHECK_SCRIPT.name), env=env.env(**settings)),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = subprocess.run(
        as_postgres("sh", str(env.scripts / PUSH_RESULT_SCRIPT.name), env=env.env(**settings)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return check, report


def authorization(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def pushed(env: Environment) -> dict[str, float]:
    """What Prometheus scrapes from the Pushgateway (as its own user)."""
    request = urllib.request.Request(
        f"{env.pushgateway_url}/metrics", headers=authorization(SCRAPE_USER, SCRAPE_PASSWORD)
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(sophia_restore_verification_\w+)\{(.*)\} (\S+)", line)
        if match and 'store="postgres"' in match.group(2) and 'job="restore-verification"' in match.group(2):
            found[match.group(1).removeprefix("sophia_restore_verification_")] = float(match.group(3))
    return found


def test_latest_backup_restores_verifies_and_reports(environment: Environment) -> None:
    env = environment
    for query in (
        "CREATE TABLE orders (id serial PRIMARY KEY, note text)",
        "INSERT INTO orders (note) SELECT 'before backup ' || g FROM generate_series(1, 20000) g",
        "CREATE TABLE sessions (id bigint PRIMARY KEY)",
        "INSERT INTO sessions SELECT generate_series(1, 5000)",
    ):
        sql(env, f"SET ROLE app; {query}", database="app")
    # The nightly base backup, as the ScheduledBackup runs it.
    started = time.monotonic()
    run(
        env,
        "barman-cloud-backup",
        # The Backup's `onlineConfiguration.immediateCheckpoint: true`: no spread checkpoint to wait for.
        "--immediate-checkpoint",
        *env.barman_options.split(),
        "-h",
        str(env.socket_dir),
        "-p",
        str(env.pg_port),
        "-U",
        "postgres",
        DESTINATION,
        SERVER,
    )
    print(f"\nbase backup took {time.monotonic() - started:.1f} s")
    # The base backup carries the operator's configuration, /controller paths and all.
    client = s3(env)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"postgres/{SERVER}/base/")
    tar_key = next(o["Key"] for o in listed["Contents"] if o["Key"].endswith("/data.tar"))
    with tarfile.open(fileobj=io.BytesIO(client.get_object(Bucket=BUCKET, Key=tar_key)["Body"].read())) as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
        custom = tar.extractfile(next(m for m in tar.getmembers() if m.name.removeprefix("./") == "custom.conf"))
        assert custom is not None
        assert "log_directory = '/controller/log'" in custom.read().decode()
        assert {"override.conf", "pg_ident.conf", "postgresql.auto.conf"} <= names
    # Writes after the base backup reach the restore only through WAL replay.
    sql(env, "INSERT INTO orders (note) SELECT 'after backup ' || g FROM generate_series(1, 7000) g", database="app")
    sql(env, "DELETE FROM sessions WHERE id <= 1000", database="app")

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

    # The archive loses every WAL segment after the one that ends the base backup: the backup is
    # still consistent, but the chain no longer reaches the moment of the check.
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"postgres/{SERVER}/wals/")
    segments = sorted(o["Key"] for o in listed["Contents"] if not o["Key"].endswith(".backup"))
    history = next(o["Key"] for o in listed["Contents"] if o["Key"].endswith(".backup"))
    label = client.get_object(Bucket=BUCKET, Key=history)["Body"].read().decode()
    stop_segment = re.search(r"STOP WAL LOCATION: \S+ \(file (\w+)\)", label)
    assert stop_segment is not None, label
    lost = [key for key in segments if Path(key).name.split(".")[0] > stop_segment.group(1)]
    assert lost, segments
    client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in lost]})
    # The next run's timestamps (whole seconds) must differ from the first run's: wait for the clock.
    while time.time() < first_success + 1:
        time.sleep(0.05)

    check, report = restore_check(env)
    assert report.returncode != 0, "a failed check must fail the Job"
    assert "marker" in check.stderr, check.stderr
    assert "missing" in check.stderr, check.stderr
    metrics = pushed(env)
    assert metrics["success"] == 0
    assert metrics["last_run_timestamp_seconds"] > first_success
    assert metrics["last_success_timestamp_seconds"] == first_success

    # Nobody else can push a result: without the restore checks' credentials the push is refused.
    forged = b"sophia_restore_verification_success 1\n"
    url = f"{env.pushgateway_url}/metrics/job/restore-verification/store/postgres"
    for headers in ({}, authorization(PUSH_USER, "guessed"), authorization("someone", PUSH_PASSWORD)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=forged, headers=headers), timeout=5)
        assert refused.value.code == 401
    assert pushed(env)["success"] == 0
