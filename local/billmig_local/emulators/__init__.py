"""Vendor emulators that `billmig local up` starts, each a real HTTP server on 127.0.0.1.

An emulator package `billmig_local.emulators.<name>` exposes

    def start(*, clock: WorldClock, state_dir: Path | None, port: int = 0) -> RunningEmulator

and, in `<name>/seed.py`, a typer command function `seed(...)` that `billmig local seed <name>` runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from billmig_local.clock import WorldClock
from billmig_local.emulators.base import RunningEmulator

EMULATOR_NAMES = ("stripe", "metronome", "stigg")


class EmulatorStarter(Protocol):
    def __call__(self, *, clock: WorldClock, state_dir: Path | None, port: int = 0) -> RunningEmulator: ...


def available_emulators() -> dict[str, EmulatorStarter]:
    """The emulators that exist in this checkout, by name (a missing package is simply not there yet)."""
    found: dict[str, EmulatorStarter] = {}
    for name in EMULATOR_NAMES:
        try:
            module = importlib.import_module(f"billmig_local.emulators.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"billmig_local.emulators.{name}"):
                continue
            raise
        start = getattr(module, "start", None)
        if start is not None:
            found[name] = start
    return found


def available_seeders() -> dict[str, Callable[..., object]]:
    found: dict[str, Callable[..., object]] = {}
    for name in available_emulators():
        try:
            module = importlib.import_module(f"billmig_local.emulators.{name}.seed")
        except ModuleNotFoundError:
            continue
        found[name] = module.seed
    return found
