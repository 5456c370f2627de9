"""The Redis snapshot and restore check, for real: the jobs' own scripts against the six-node
TLS cluster on 127.0.0.1 (one RDB per master, with the key counts the masters published), then
every RDB loaded into a scratch redis-server and counted. A damaged RDB must fail the check."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from redis.cluster import RedisCluster as ClusterClient

from components.backup.restore_checks import REDIS_CHECK_SCRIPT, REDIS_SNAPSHOT_SCRIPT
from tests.realservers.certs import ServerCerts
from tests.realservers.redis_nodes import PASSWORD, USERS, Node

KEYS = 3000


def run_script(script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def result_metrics(path: Path) -> dict[str, float]:
    metrics = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"sophia_restore_verification_(\w+) (\S+)", line)
        if match:
            metrics[match.group(1)] = float(match.group(2))
    return metrics


def test_snapshot_of_every_master_restores_with_the_published_key_counts(
    cluster: tuple[list[Node], ServerCerts], tmp_path: Path
) -> None:
    nodes, certs = cluster
    writer = ClusterClient(
        host="127.0.0.1",
        port=nodes[0].port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(certs.ca),
        ssl_check_hostname=False,
    )
    for index in range(KEYS):
        writer.set(f"session:{index}", "x" * 32)
    snapshot_dir = tmp_path / "snapshot"

    snapshot = run_script(
        REDIS_SNAPSHOT_SCRIPT,
        REDIS_SEED=f"127.0.0.1:{nodes[0].port}",
        # As the CronJob runs it: the backup ACL user.
        REDIS_CLI_OPTIONS=f"--tls --cacert {certs.ca} --user backup",
        REDISCLI_AUTH=USERS.backup,
        SNAPSHOT_DIR=str(snapshot_dir),
    )
    assert snapshot.returncode == 0, snapshot.stderr
    manifest = [line.split("|") for line in (snapshot_dir / "manifest").read_text().splitlines()]
    assert len(manifest) == 3  # one line per master
    assert sum(int(keys) for _, keys in manifest) == KEYS
    assert all((snapshot_dir / f"{node_id}.rdb").stat().st_size > 0 for node_id, _ in manifest)

    check_env = {
        "SNAPSHOT_DIR": str(snapshot_dir),
        "RESULT_FILE": str(tmp_path / "result.prom"),
        "SCRATCH_DIR": str(tmp_path / "scratch"),
    }
    check = run_script(REDIS_CHECK_SCRIPT, **check_env)
    assert check.returncode == 0, check.stderr
    metrics = result_metrics(tmp_path / "result.prom")
    assert metrics["success"] == 1, check.stderr
    assert metrics["restored_items"] == KEYS
    assert "last_success_timestamp_seconds" in metrics

    # A master's RDB loses its tail: that shard can no longer be restored.
    damaged = snapshot_dir / f"{manifest[0][0]}.rdb"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    check = run_script(REDIS_CHECK_SCRIPT, **check_env)
    metrics = result_metrics(tmp_path / "result.prom")
    assert metrics["success"] == 0, check.stderr
    assert "last_success_timestamp_seconds" not in metrics
    assert manifest[0][0] in check.stderr
