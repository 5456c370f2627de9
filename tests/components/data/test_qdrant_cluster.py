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


def test_renewed_certificates_reach_every_port_without_pulumi() -> None:
    run = run_stack("prod")
    config = yaml.safe_load(
        next(r for r in run.resources if r.name == "qdrant-1-config").inputs["data"]["production.yaml"]
    )
    assert config["tls"]["cert_ttl"] == 3600  # HTTPS re-reads its certificate
    certificate = run.named("qdrant-1-tls-certificate").inputs["spec"]
    assert certificate["secretName"] == "qdrant-1-tls"
    assert certificate["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "qdrant-1-tls-issuer"}
    assert (certificate["duration"], certificate["renewBefore"]) == ("2160h", "720h")
    # gRPC and p2p: the rollout job restarts the peers one at a time once the Secret holds a new one.
    rollout = run.named("qdrant-1-tls-rollout")
    pod = rollout.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env == {"NAMESPACE": "sophia-data", "STATEFULSET": "qdrant-1", "CERTIFICATE_NAME": "qdrant-1-tls"}
    rules = run.named("qdrant-1-tls-rollout-role").inputs["rules"]
    assert [(r["resources"], r["resourceNames"], r["verbs"]) for r in rules] == [
        (["secrets"], ["qdrant-1-tls"], ["get"]),
        (["statefulsets"], ["qdrant-1"], ["get", "patch"]),
    ]
