"""The emulator answers only what Lambda's OpenAPI document lists, save the field-reported answers."""

from __future__ import annotations

import pytest

from tests.providers.lambda_cloud import openapi
from tests.providers.lambda_cloud.emulator import COMMON_ERRORS, FIELD_REPORTED, LambdaEmulator, declared_errors

ROUTES = sorted(declared_errors())


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_every_error_a_handler_can_answer_is_documented_for_its_endpoint(method: str, template: str) -> None:
    documented = openapi.documented_errors(method, template)
    reported = FIELD_REPORTED.get(f"{method} {template}", frozenset())
    undocumented = (declared_errors()[(method, template)] | COMMON_ERRORS) - documented - reported
    assert undocumented == set(), f"{method} {template} answers codes the document does not list for it"


def test_the_field_reported_answers_use_documented_codes_or_say_why() -> None:
    """5xx carry the document's internal-error code; 429 and the terminate quirk are named in DESIGN.md."""
    codes = {code for (_, code) in FIELD_REPORTED["*"]}
    every_documented = {code for m, t in ROUTES for _, code in openapi.documented_errors(m, t)}
    assert codes - every_documented == {"global/rate-limited"}


def test_an_injected_fault_the_document_does_not_list_is_a_violation() -> None:
    with LambdaEmulator() as emulator:
        emulator.faults.errors.append(("GET", "/instances", 400, "global/quota-exceeded", 1))
        emulator.handle("GET", "/api/v1/instances", None, f"Bearer {emulator.api_key}")
        assert emulator.violations[0] == (
            "GET /instances: answered (400, 'global/quota-exceeded'), which neither the handler declares "
            "nor the document lists"
        )
