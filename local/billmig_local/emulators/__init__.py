"""Vendor emulators that `billmig local up` starts, each a real HTTP server on 127.0.0.1.

An emulator package `billmig_local.emulators.<name>` exposes

    def start(*, clock: WorldClock, state_dir: Path | None, port: int = 0) -> RunningEmulator

and, in `<name>/seed.py`, a typer command function `seed(...)` that `billmig local seed <name>` runs. It may also
declare how the local stack wires it in, as `STACK_WIRING = StackWiring(...)`: the template parameters that point the
functions at it, the local secret the functions read, and what it does when the world clock moves. The stack loops
over these; it names no emulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from billmig_local.clock import WorldClock
from billmig_local.emulators.server import RunningEmulator

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


@dataclass(frozen=True)
class LocalSecret:
    """A secret the functions read from Secrets Manager, named by a stack output; the emulator accepts any value."""

    output: str
    value: str


@dataclass(frozen=True)
class StackWiring:
    template_parameters: Callable[[str], dict[str, str]] = lambda _url: {}
    local_secret: LocalSecret | None = None
    # Called with the emulator's URL and the seconds the world clock moved; returns how many objects followed it.
    on_clock_moved: Callable[[str, float, float], int] | None = None  # (url, seconds moved, the instant moved to)


def stack_wirings() -> dict[str, StackWiring]:
    """Each available emulator's wiring (an emulator that declares none gets the empty one)."""
    return {
        name: getattr(importlib.import_module(f"billmig_local.emulators.{name}"), "STACK_WIRING", StackWiring())
        for name in available_emulators()
    }


def available_seeders() -> dict[str, Callable[..., object]]:
    found: dict[str, Callable[..., object]] = {}
    for name in available_emulators():
        try:
            module = importlib.import_module(f"billmig_local.emulators.{name}.seed")
        except ModuleNotFoundError:
            continue
        found[name] = module.seed
    return found
