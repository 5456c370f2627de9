"""The in-process evaluation plays a first real preview: unknown ids and unknown output-only properties,
outputs (not inputs) for stack rules, and the children a provider registers for a ConfigFile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks

from tests.policies.helpers import POLICIES, aws, k8s
from tools.harness import MANIFEST_DIR_ENV, UNKNOWN, EchoMocks, run_program
from tools.policy_eval import UNEXPANDED, evaluate

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "operator", "namespace": "operators"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "operator"}},
        "template": {
            "metadata": {"labels": {"app": "operator"}},
            "spec": {"containers": [{"name": "manager", "image": "op:1.0", "securityContext": {"privileged": True}}]},
        },
    },
}
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "operator"},
    "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "operators"}}


def manifest(directory: Path, name: str = "operator.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump_all([NAMESPACE, DEPLOYMENT, ROLE]))
    return path


def test_a_config_file_is_expanded_as_the_kubernetes_provider_registers_it(tmp_path: Path) -> None:
    path = manifest(tmp_path)
    run = run_program(lambda: k8s.yaml.v2.ConfigFile("cnpg", file=str(path)))
    component = run.named("cnpg")
    children = {r.name: r for r in run.resources if r.parent == component.urn}
    assert sorted(children) == ["cnpg-operator", "cnpg-operators", "cnpg-operators/operator"]
    deployment = children["cnpg-operators/operator"]
    assert deployment.type == "kubernetes:apps/v1:Deployment"
    assert deployment.custom
    assert deployment.inputs["spec"]["replicas"] == 1.0  # engine-shaped: through a protobuf Struct
    assert children["cnpg-operators"].type == "kubernetes:core/v1:Namespace"
    checked = [POLICIES["kubernetes-workload-no-privileged"], POLICIES["kubernetes-rbac-role-no-escalation"]]
    found = evaluate(run, {}, policies=checked).violations
    policies = {(v.policy, v.resource_name) for v in found}
    assert ("kubernetes-workload-no-privileged", "cnpg-operators/operator") in policies
    assert ("kubernetes-rbac-role-no-escalation", "cnpg-operator") in policies


def test_a_config_group_is_expanded_too() -> None:
    text = yaml.safe_dump_all([NAMESPACE, DEPLOYMENT])
    run = run_program(lambda: k8s.yaml.v2.ConfigGroup("group", yaml=text))
    assert {r.name for r in run.resources if r.custom} == {"group-operators", "group-operators/operator"}


def test_a_remote_manifest_is_read_from_the_reference_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest(tmp_path, "cnpg-9.9.9.yaml")
    url = "https://raw.githubusercontent.com/example/operator/v9.9.9/releases/cnpg-9.9.9.yaml"
    monkeypatch.setenv(MANIFEST_DIR_ENV, str(tmp_path))
    run = run_program(lambda: k8s.yaml.v2.ConfigFile("cnpg", file=url))
    assert run.unexpanded == ()
    assert len([r for r in run.resources if r.custom]) == 3


def test_a_manifest_not_available_offline_is_named_not_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MANIFEST_DIR_ENV, str(tmp_path))
    run = run_program(lambda: k8s.yaml.v2.ConfigFile("cnpg", file="https://example.com/missing.yaml"))
    assert [why for _, why in run.unexpanded] == [
        "the manifest https://example.com/missing.yaml is not available offline"
    ]
    skipped = evaluate(run, {}, policies=[POLICIES["kubernetes-workload-no-privileged"]]).skipped
    assert skipped == ((UNEXPANDED, "cnpg: its children were not analyzed: " + run.unexpanded[0][1]),)


def test_a_first_preview_has_unknown_ids_and_output_only_properties() -> None:
    def build() -> None:
        bucket = aws.s3.Bucket("b", bucket="backups")
        aws.s3.BucketPublicAccessBlock("pab", bucket=bucket.id, block_public_acls=True)

    first = run_program(build, first_preview=True)
    assert first.named("pab").inputs["bucket"] == UNKNOWN
    assert first.named("b").state["arn"] == UNKNOWN
    assert first.named("b").state["bucket"] == "backups"
    update = run_program(build)
    assert update.named("pab").inputs["bucket"] == "b-id"
    assert "arn" not in update.named("b").state


class _SuspendingProvider(EchoMocks):
    """A provider whose state differs from the inputs (it reports versioning suspended)."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        id_, state = super().new_resource(args)
        if args.typ == "aws:s3/bucketVersioning:BucketVersioning":
            state = {**state, "versioningConfiguration": {"status": "Suspended"}}
        return id_, state


def test_stack_rules_see_the_outputs_and_resource_rules_the_inputs() -> None:
    def build() -> None:
        bucket = aws.s3.Bucket("b")
        aws.s3.BucketVersioning(
            "v", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=pulumi.ResourceOptions()
        )

    run = run_program(build, mock_impl=_SuspendingProvider())
    assert run.named("v").inputs["versioningConfiguration"]["status"] == "Enabled"
    found = evaluate(run, {}, policies=[POLICIES["aws-s3-bucket-versioned"]]).violations
    assert [(v.policy, v.message) for v in found] == [("aws-s3-bucket-versioned", "b: versioning is not enabled.")]
