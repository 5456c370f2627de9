"""Qdrant's S3 snapshot keys, for real: an S3 server on 127.0.0.1 (moto) holds a bucket laid out
exactly as Qdrant v1.19.0 names its objects for the rendered config, and the restore check's and
the DR restore's own plan step (`qdrant_plan.sh`, with the env the rendered CronJobs give it)
must find every snapshot: each presigned URL it writes downloads the snapshot's bytes.

How Qdrant names an object (qdrant/qdrant, v1.19.0): a collection snapshot is created at
`<storage.snapshots_path>/<collection>/<collection>-<peer id>-<UTC %Y-%m-%d-%H-%M-%S>.snapshot`
(`Collection::create_snapshot`, lib/collection/src/collection/snapshots.rs), and the S3 storage uses
that path as the key after `trim_dot_slash` (lib/collection/src/operations/snapshot_storage_ops.rs)
and `object_store::path::Path::from` (which drops empty segments). `S3Config` has no prefix field.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from components.backup.restore_checks import SCRIPTS
from components.data.qdrant_cluster import object_key
from tests.realservers.ports import free_port
from tests.realservers.services import s3_server
from tests.tools_on_path import require_tool
from tools.harness import run_stack

CRONJOB = "kubernetes:batch/v1:CronJob"
KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
PEERS = {1111: "qdrant-1-0", 2222: "qdrant-1-1", 3333: "qdrant-1-2"}
STAMP = "2026-11-30-02-00-07"


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_server(free_port()) as url:
        yield url


def client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=KEYS["AWS_DEFAULT_REGION"],
        aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
    )


def step_env(cron_job: Mapping[str, Any], step: str) -> dict[str, str]:
    containers = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = next(c for c in [*containers.get("initContainers", []), *containers["containers"]] if c["name"] == step)
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def qdrant_writes(url: str, bucket: str, snapshots_path: str, collections: list[str]) -> dict[str, bytes]:
    """Every peer snapshots every collection, as Qdrant names and stores the objects; returns key -> bytes."""
    s3 = client(url)
    s3.create_bucket(Bucket=bucket)
    written = {}
    for collection in collections:
        for peer_id in PEERS:
            name = f"{collection}-{peer_id}-{STAMP}.snapshot"
            key = object_key(f"{snapshots_path}/{collection}/{name}")
            body = f"{collection} of peer {peer_id}".encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            written[key] = body
    return written


def plan(url: str, env: Mapping[str, str], tmp_path: Path, manifest: str) -> list[list[str]]:
    """The manifest the snapshot job uploads (via its own upload step), then the plan step."""
    aws = require_tool("aws")
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "S3_ENDPOINT_URL": url, **KEYS}
    source = tmp_path / "manifest-dir"
    source.mkdir(exist_ok=True)
    (source / "manifest").write_text(manifest)
    upload = subprocess.run(
        ["sh", str(SCRIPTS / "upload_snapshot.sh")],
        env={**base, "SOURCE_DIR": str(source), "DESTINATION": env["MANIFESTS"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert upload.returncode == 0, upload.stderr
    plan_file = tmp_path / "plan"
    result = subprocess.run(
        ["sh", str(SCRIPTS / "qdrant_plan.sh")],
        env={**base, **{k: v for k, v in env.items() if k != "AWS_DEFAULT_REGION"}, "PLAN_FILE": str(plan_file)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{aws}: {result.stderr}"
    return [line.split("|") for line in plan_file.read_text().splitlines()]


def manifest_lines(collections: list[str]) -> str:
    """What qdrant_snapshot.sh records: the snapshot name each peer's API returned."""
    return "".join(
        f"{c}|{host}.qdrant-1-headless.sophia-data.svc|{c}-{peer_id}-{STAMP}.snapshot|{peer_id}\n"
        for c in collections
        for peer_id, host in PEERS.items()
    )


def test_the_restore_check_finds_every_snapshot_where_qdrant_wrote_it(s3_url: str, tmp_path: Path) -> None:
    run = run_stack("prod")
    config = yaml.safe_load(run.named("qdrant-1-config").inputs["data"]["production.yaml"])
    storage = config["storage"]
    assert "prefix" not in storage["snapshots_config"]["s3_config"]  # Qdrant has no such setting
    bucket = storage["snapshots_config"]["s3_config"]["bucket"]
    collections = ["documents", "faq"]
    written = qdrant_writes(s3_url, bucket, storage["snapshots_path"], collections)
    assert all(key.startswith("qdrant/qdrant-1/") for key in written)

    check = next(r.inputs for r in run.by_type(CRONJOB) if r.name == "qdrant-1-restore-check")
    lines = plan(s3_url, step_env(check, "plan"), tmp_path, manifest_lines(collections))
    assert len(lines) == len(written)
    for collection, _peer, url, points in lines:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        assert body == f"{collection} of peer {points}".encode()
    # The Qdrant volume that receives the snapshot before its upload is mounted at snapshots_path.
    statefulset = next(r for r in run.by_type("kubernetes:apps/v1:StatefulSet") if r.name == "qdrant-1")
    pod = statefulset.inputs["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["snapshots"] == storage["snapshots_path"]


def test_the_dr_restore_finds_the_primarys_replicated_snapshots(s3_url: str, tmp_path: Path) -> None:
    prod = yaml.safe_load(run_stack("prod").named("qdrant-1-config").inputs["data"]["production.yaml"])
    dr = run_stack("dr")
    restore = next(r.inputs for r in dr.by_type(CRONJOB) if r.name == "qdrant-1-dr-restore")
    env = step_env(restore, "plan")
    replica_bucket = env["MANIFESTS"].removeprefix("s3://").split("/")[0]
    # S3 replication copies every object under the same key into the replica bucket.
    written = qdrant_writes(s3_url, replica_bucket, prod["storage"]["snapshots_path"], ["documents"])
    lines = plan(s3_url, env, tmp_path, manifest_lines(["documents"]))
    assert len(lines) == len(written) == 3
    for _collection, _peer, url, _points in lines:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() in written.values()


def test_object_keys_follow_qdrants_path_rules() -> None:
    assert (
        object_key("./snapshots/c/c-1-2026-01-01-00-00-00.snapshot") == "snapshots/c/c-1-2026-01-01-00-00-00.snapshot"
    )
    assert object_key("/qdrant/qdrant-0/c/x.snapshot") == "qdrant/qdrant-0/c/x.snapshot"
    assert object_key("././a//b/x.snapshot") == "a/b/x.snapshot"
