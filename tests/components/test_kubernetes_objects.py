"""Every Kubernetes object the stacks render is valid for the cluster version in settings."""

from __future__ import annotations

import pytest

from components.data.postgres_config import replication_parameters, synchronous_replication
from settings import parse_settings
from tests.helpers import stack_config
from tests.k8s_schemas import crd_schemas, kubernetes_objects, rule_count, validate_custom_resource, validate_manifest
from tools.harness import run_stack


@pytest.mark.parametrize("stack", ["prod", "dev", "dr"])
def test_rendered_objects_match_the_cluster_schemas(stack: str) -> None:
    settings = parse_settings(stack_config(stack))
    # prod and dev: the primary cluster; dr: its EKS cluster.
    version = settings.kubernetes.version if settings.kubernetes else settings.dr.eks.version  # type: ignore[union-attr]
    objects = kubernetes_objects(run_stack(stack))
    kinds = {manifest["kind"] for _, manifest in objects}
    assert {"Namespace", "NetworkPolicy"} <= kinds
    problems = {name: validate_manifest(manifest, version) for name, manifest in objects}
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_the_validator_rejects_a_broken_object() -> None:
    broken = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"a": 1}}}
    assert validate_manifest(broken, "1.31") != []
    unknown_field = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x"},
        "spec": {"podSelector": {}, "policyTypez": ["Ingress"]},
    }
    assert validate_manifest(unknown_field, "1.31") != []


def cnpg_cluster(**spec_changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "instances": 3,
        "storage": {"size": "500Gi", "storageClass": "fast-ssd-retain"},
        "postgresql": {"parameters": replication_parameters(), "synchronous": synchronous_replication(2) or {}},
        "monitoring": {"enablePodMonitor": True},
    }
    spec.update(spec_changes)
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "pg"}, "spec": spec}


def test_generated_postgres_settings_fit_the_cloudnative_pg_crd() -> None:
    assert validate_custom_resource(cnpg_cluster()) == []


def test_the_crd_validator_rejects_what_the_operator_would() -> None:
    bad_sync = cnpg_cluster(postgresql={"synchronous": {"method": "all", "number": 1}})
    assert any("synchronous.method" in e for e in validate_custom_resource(bad_sync))
    assert validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Widget"}) != []


def test_cel_rules_are_evaluated_as_the_api_server_would() -> None:
    # What dev rendered before: the schema allows it, a CEL rule of the Cluster CRD does not.
    zero = cnpg_cluster(postgresql={"synchronous": {"method": "any", "number": 0, "dataDurability": "preferred"}})
    assert any("greater than zero" in e for e in validate_custom_resource(zero))
    # A rule that reads a missing field errors; as in CEL, `error || true` still holds.
    unset = cnpg_cluster(postgresql={"synchronous": {"method": "any", "number": 1}})
    assert validate_custom_resource(unset) == []
    both = cnpg_cluster(
        imageName="x",
        imageCatalogRef={"apiGroup": "postgresql.cnpg.io", "kind": "ImageCatalog", "name": "c", "major": 15},
    )
    assert any("mutually exclusive" in e for e in validate_custom_resource(both))
    store = {
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": "s"},
        "spec": {"configuration": {"destinationPath": "s3://b/p", "serverName": "pg"}},
    }
    assert any("serverName" in e for e in validate_custom_resource(store))
    # Every CRD of the reference folder is loaded, with its rules (745 in all).
    assert sum(rule_count(schema) for schema in crd_schemas().values()) >= 700


def test_custom_resources_are_checked_against_their_crds() -> None:
    objects = {
        name: m for name, m in kubernetes_objects(run_stack("prod")) if m.get("apiVersion", "").startswith("postgresql")
    }
    assert objects["postgres"]["kind"] == "Cluster"
    assert objects["postgres-daily"]["kind"] == "ScheduledBackup"
    assert validate_manifest(objects["postgres"], "1.31") == []
    broken = {**objects["postgres"], "spec": {**objects["postgres"]["spec"], "instances": "three"}}
    assert validate_manifest(broken, "1.31") != []
