"""schemathesis: billable metrics, products, rate cards and rates (see `metronome_schemathesis`)."""

from __future__ import annotations

import pytest
from billmig_local.emulators.metronome.openapi_validation import raw_document
from metronome_schemathesis import IMPLEMENTED, check_operation, is_pricing, schemathesis_ids
from metronome_world import World

OPERATIONS = [(method, path) for method, path in IMPLEMENTED if is_pricing(path)]


@pytest.fixture(scope="module")
def known_ids(shared_world: World) -> dict[str, str]:
    return schemathesis_ids(shared_world)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms(method: str, path: str, shared_world: World, known_ids: dict[str, str]) -> None:
    check_operation(method, path, shared_world, known_ids)


def test_every_route_is_in_the_document() -> None:
    paths = raw_document()["paths"]
    assert all(method.lower() in paths.get(path, {}) for method, path in IMPLEMENTED)
