"""Fixtures: a real Stigg emulator on 127.0.0.1 driven by the official `stigg-api-client`, catalogue seeded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from billmig_local.emulators.stigg.seed import seed_catalogue
from stigg_world import World, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One seeded emulator per module; tests isolate themselves by fresh customer ids."""
    state_dir = tmp_path_factory.mktemp("stigg")
    world = start_world(state_dir)
    seed_catalogue(world.client)
    try:
        yield world
    finally:
        world.stop()
