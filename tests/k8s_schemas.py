"""Validate rendered Kubernetes objects offline: built-in kinds against the Kubernetes schemas for
the cluster version (kubernetes-validate), custom resources against the CRDs in
`../shared/reference/crds/`."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft202012Validator

from tools.harness import UNKNOWN, StackRun
from tools.redact import plaintext

CRD_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "crds"
NOT_OBJECTS = ("pulumi:providers:", "kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")


class _CrdLoader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` as the 'value' tag; in the CRDs it is just the string '='."""


def _plain_scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _plain_scalar)


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, from every CRD in the reference folder."""
    if not CRD_DIR.is_dir():
        raise FileNotFoundError(f"the reference CRDs are missing: {CRD_DIR}")
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_CrdLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_custom_resource(manifest: Mapping[str, Any]) -> list[str]:
    key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"no CRD for {key[0]} {key[1]} in {CRD_DIR}"]
    return [
        f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(manifest)
    ]


def validate_manifest(manifest: Mapping[str, Any], version: str) -> list[str]:
    api_version = str(manifest.get("apiVersion"))
    if (api_version, str(manifest.get("kind"))) in crd_schemas():
        return validate_custom_resource(manifest)
    try:
        kubernetes_validate.validate(dict(manifest), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '<root>'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [str(error)]
    return []


def kubernetes_objects(run: StackRun) -> list[tuple[str, dict[str, Any]]]:
    """(resource name, manifest) for every Kubernetes object the stack registers."""
    objects = []
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(NOT_OBJECTS):
            continue
        manifest = _known(plaintext(dict(resource.inputs)))
        objects.append((resource.name, manifest))
    return objects


def _known(value: Any) -> Any:
    """Drop values computed at deploy time (unknown in a preview): the schema cannot judge them."""
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [_known(v) for v in value if v != UNKNOWN]
    return value
