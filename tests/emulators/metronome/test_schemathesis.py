"""schemathesis over every operation the emulator implements, against the live server, from Metronome's document.

Checks: no 5xx on generated inputs, replies conform to the documented response schema, JSON content type.
`status_code_conformance` is not run: the published document omits statuses the real API returns (e.g. 404 on
`GET /v1/customers/{customer_id}`, 400 on most operations), so it would flag Metronome's own behaviour.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import schemathesis
from billmig_local.emulators.metronome.app import ROUTES
from billmig_local.emulators.metronome.openapi_validation import raw_document
from hypothesis import HealthCheck, given, settings
from metronome_world import World
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

IMPLEMENTED = [(method, path) for method, path, _ in ROUTES]
EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


V2_DOCUMENTED_CODES = {"CustomerNotFound", "ContractNotFound"}


def _undocumented_v2_error_code(path: str, response: Any) -> bool:
    """v2 400 bodies are documented with `code` in {CustomerNotFound, ContractNotFound} only; the emulator also
    answers schema violations and business-rule errors there (code `ValidationError`, `invalid_threshold`, ...)."""
    if not path.startswith("/v2/") or response.status_code != 400:
        return False
    return response.json().get("code") not in V2_DOCUMENTED_CODES


@functools.cache
def metronome_schema() -> Any:
    """Loaded on first use (not at collection), once per worker process."""
    return schemathesis.openapi.from_dict(raw_document())


@pytest.mark.parametrize(("method", "path"), IMPLEMENTED, ids=[f"{m} {p}" for m, p in IMPLEMENTED])
def test_operation_conforms(method: str, path: str, shared_world: World) -> None:
    operation = metronome_schema()[path][method]
    headers = {"Authorization": "Bearer schemathesis"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: Any) -> None:
        response = case.call(base_url=shared_world.emulator.url, headers=headers)
        if _undocumented_v2_error_code(path, response):
            assert response.status_code == 400 and response.json()["message"]
            return
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_route_is_in_the_document() -> None:
    paths = raw_document()["paths"]
    assert all(method.lower() in paths.get(path, {}) for method, path in IMPLEMENTED)
