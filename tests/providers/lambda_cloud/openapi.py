"""Validators for request and response bodies, built from Lambda's OpenAPI document.

The document lives in `../shared/reference/` (it is not copied into the project).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "lambda-cloud-api-openapi-1.10.0.json"
API_PREFIX = "/api/v1"


@cache
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"the Lambda OpenAPI document is missing: {SPEC_PATH}")
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return document


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry().with_resource("urn:lambda-spec", DRAFT202012.create_resource(spec()))
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"urn:lambda-spec#/{pointer}"}, registry=_registry())


def documented_statuses(method: str, path_template: str) -> set[int]:
    operation = spec()["paths"][API_PREFIX + path_template][method.lower()]
    return {int(code) for code in operation["responses"]}


def response_errors(method: str, path_template: str, status: int, body: Any) -> list[str]:
    """Schema violations of a response; an undocumented status is itself a violation."""
    operation = spec()["paths"][API_PREFIX + path_template][method.lower()]
    if str(status) not in operation["responses"]:
        return [f"{method} {path_template}: status {status} is not documented"]
    pointer = _pointer(
        "paths",
        API_PREFIX + path_template,
        method.lower(),
        "responses",
        str(status),
        "content",
        "application/json",
        "schema",
    )
    return [f"{method} {path_template} {status}: {e.message}" for e in _validator(pointer).iter_errors(body)]


def request_errors(method: str, path_template: str, body: Any) -> list[str]:
    operation = spec()["paths"][API_PREFIX + path_template][method.lower()]
    if "requestBody" not in operation:
        return []
    pointer = _pointer(
        "paths", API_PREFIX + path_template, method.lower(), "requestBody", "content", "application/json", "schema"
    )
    return [f"{method} {path_template} request: {e.message}" for e in _validator(pointer).iter_errors(body)]


def _codes(schema: Any) -> set[str]:
    """Error codes a response schema allows (its `error` may be one of several error schemas)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _codes(spec()["components"]["schemas"][name])
    codes: set[str] = set()
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            codes |= _codes(option)
    code = schema.get("properties", {}).get("code", {})
    if "const" in code:
        codes.add(code["const"])
    codes.update(code.get("enum", []))
    return codes


@cache
def documented_errors(method: str, path_template: str) -> frozenset[tuple[int, str]]:
    """(status, code) of every error the document lists for an operation."""
    operation = spec()["paths"][API_PREFIX + path_template][method.lower()]
    errors: set[tuple[int, str]] = set()
    for status, response in operation["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        error = schema.get("properties", {}).get("error")
        if error is not None:
            errors |= {(int(status), code) for code in _codes(error)}
    return frozenset(errors)


def documents_error(method: str, path_template: str, status: int, code: str) -> bool:
    return (status, code) in documented_errors(method, path_template)
