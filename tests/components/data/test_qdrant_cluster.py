"""QdrantCluster as the stacks render it."""

from __future__ import annotations

import yaml

from tools.harness import RegisteredResource, StackRun, run_stack

STATEFULSET = "kubernetes:apps/v1:StatefulSet"


def statefulsets(run: StackRun) -> dict[str, RegisteredResource]:
    return {r.name: r for r in run.by_type(STATEFULSET) if r.name.startswith("qdrant-")}


def test_prod_runs_three_clusters_of_three_parallel_peers() -> None:
    run = run_stack("prod")
    sets = statefulsets(run)
    assert sorted(sets) == ["qdrant-0", "qdrant-1", "qdrant-2"]
    spec = sets["qdrant-0"].inputs["spec"]
    assert spec["replicas"] == 3.0
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert all(s.protect for s in sets.values())
    container = spec["template"]["spec"]["containers"][0]
    assert sorted(p["containerPort"] for p in container["ports"]) == [6333.0, 6334.0, 6335.0]
    env = {e["name"]: e for e in container["env"]}
    assert env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "qdrant-0-keys", "key": "api-key"}
    assert "QDRANT__SERVICE__READ_ONLY_API_KEY" in env
    assert "value" not in env["QDRANT__STORAGE__SNAPSHOTS_CONFIG__S3_CONFIG__SECRET_KEY"]


def test_config_sets_replication_tls_and_s3_snapshots() -> None:
    run = run_stack("prod")
    config_map = next(r for r in run.resources if r.name == "qdrant-1-config")
    config = yaml.safe_load(config_map.inputs["data"]["production.yaml"])
    assert config["storage"]["collection"]["replication_factor"] == 2
    assert config["cluster"] == {"enabled": True, "p2p": {"port": 6335, "enable_tls": True}}
    assert config["service"]["enable_tls"] is True
    assert config["storage"]["snapshots_config"]["snapshots_storage"] == "s3"
    assert config["storage"]["snapshots_config"]["s3_config"]["bucket"] == "sophia-prod-backups"
    # Qdrant's S3 keys follow snapshots_path (it has no prefix setting): qdrant/qdrant-1/<collection>/...
    assert "prefix" not in config["storage"]["snapshots_config"]["s3_config"]
    assert config["storage"]["snapshots_path"] == "/qdrant/qdrant-1"


def test_dev_runs_one_single_node_cluster_unprotected() -> None:
    sets = statefulsets(run_stack("dev"))
    assert list(sets) == ["qdrant-0"]
    assert sets["qdrant-0"].inputs["spec"]["replicas"] == 1.0
    assert sets["qdrant-0"].protect is False
