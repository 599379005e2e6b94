"""Fixtures: a real Stripe emulator on 127.0.0.1 (own clock, own state dir) driven by the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stripe_world import World, start_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh emulator and clock per test: billing tests move time, which must not leak into other tests."""
    created = start_world(tmp_path)
    try:
        yield created
    finally:
        created.stop()


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One emulator per module for tests that never move the clock; isolate them by fresh customers."""
    created = start_world(tmp_path_factory.mktemp("stripe"))
    try:
        yield created
    finally:
        created.stop()
