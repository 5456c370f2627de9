"""Validate rendered Kubernetes objects offline: built-in kinds against the Kubernetes schemas for
the cluster version (kubernetes-validate), custom resources against the CRDs in
`../shared/reference/crds/`: their OpenAPI schema and their CEL rules (`x-kubernetes-validations`),
evaluated with cel-expr-python (Google's cel-cpp) plus the strings extension Kubernetes enables.

As the API server does on create: schema defaults are applied first, integer fields are integers
(the engine sends every number as a float), a rule that evaluates to false or to an error (a
missing field read without `has()`) rejects the object, and transition rules (`oldSelf`) are
skipped. What this cannot see: operators' admission webhooks (CloudNativePG's Go validation)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from cel_expr_python import cel
from cel_expr_python.ext.ext_strings import ExtStrings
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
    errors = [
        f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(manifest)
    ]
    return errors or cel_errors(schema, manifest)


@cache
def _cel_env() -> Any:
    return cel.NewEnv(variables={"self": cel.Type.DYN, "oldSelf": cel.Type.DYN}, extensions=[ExtStrings()])


@cache
def _compiled(rule: str) -> Any:
    return _cel_env().compile(rule)


def cel_errors(schema: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    """Every CEL rule of `schema` that the object (defaulted, integers as integers) breaks."""
    value = _normalise(schema, copy.deepcopy(dict(manifest)))
    errors: list[str] = []
    _evaluate(schema, value, "", errors)
    return errors


def rule_count(schema: Mapping[str, Any]) -> int:
    """How many CEL rules a schema holds (to show the validator sees them)."""
    own = len(schema.get("x-kubernetes-validations", []))
    children = [*schema.get("properties", {}).values()]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    return own + sum(rule_count(child) for child in children)


def _normalise(schema: Mapping[str, Any], value: Any) -> Any:
    """Apply schema defaults to missing object fields and turn integral floats into integers."""
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, child in properties.items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
        extra = schema.get("additionalProperties")
        for name in list(value):
            if name in properties:
                value[name] = _normalise(properties[name], value[name])
            elif isinstance(extra, dict):
                value[name] = _normalise(extra, value[name])
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_normalise(schema["items"], item) for item in value]
    return value


def _evaluate(schema: Mapping[str, Any], value: Any, path: str, errors: list[str]) -> None:
    for rule in schema.get("x-kubernetes-validations", []):
        expression = rule["rule"]
        if "oldSelf" in expression:
            continue  # a transition rule: only an update has an old object
        result = _compiled(expression).eval(data={"self": value})
        if result.type() != cel.Type.BOOL or result.value() is not True:
            errors.append(f"{path or '<root>'}: {rule.get('message') or expression} (CEL: {expression})")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, child_value in value.items():
            child = properties.get(name, extra if isinstance(extra, dict) else None)
            if child is not None:
                _evaluate(child, child_value, f"{path}.{name}" if path else name, errors)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _evaluate(schema["items"], item, f"{path}[{index}]", errors)


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
