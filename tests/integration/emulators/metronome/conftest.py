"""Fixtures: a real Metronome emulator on 127.0.0.1 (own clock, own state dir) driven by the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from metronome import Metronome
from metronome_world import Catalogue, World, make_catalogue, start_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh emulator and clock per test: billing tests move time, which must not leak into other tests."""
    emulator, clock = start_world(tmp_path)
    client = Metronome(bearer_token="test-token", base_url=emulator.url, max_retries=0)
    try:
        yield World(emulator, clock, client, tmp_path)
    finally:
        client.close()
        emulator.server.stop()
        emulator.extra["store"].close()


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One emulator per module for tests that never move the clock; isolate them by fresh customers."""
    path = tmp_path_factory.mktemp("metronome")
    emulator, clock = start_world(path)
    client = Metronome(bearer_token="test-token", base_url=emulator.url, max_retries=0)
    try:
        yield World(emulator, clock, client, path)
    finally:
        client.close()
        emulator.server.stop()
        emulator.extra["store"].close()


@pytest.fixture
def catalogue(world: World) -> Catalogue:
    return make_catalogue(world.client)
