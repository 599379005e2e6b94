"""`billmig demo` exits non-zero on any surprise, and says which stage was surprised by what.

The command, `run_demo`, the stage runner and the report are the real ones; what they drive is not: the stack is a
stand-in (nothing in these paths reaches AWS or an emulator once the stages are replaced), the Stigg act returns its
verdict, and each Metronome stage keeps its name but only records that it ran (or is surprised).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from billmig_cli import aws_target, demo, demo_metronome
from billmig_cli.demo_lifecycle import Stage, Surprise
from billmig_cli.main import app
from billmig_local.clock import WorldClock
from typer.testing import CliRunner

SURPRISED = "plan"  # a stage in the middle, so some ran before it and some must not run after it
DIFFERENCE = "3 customers can migrate, expected 48"


class Demo:
    """The demo's stages replaced in place: what each was given, and which ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.ran: list[str] = []
        self.customers: list[int] = []
        self.surprised: str | None = None
        self.stigg_ok = True
        self.stack = SimpleNamespace(
            endpoint="http://127.0.0.1:1",
            settings=SimpleNamespace(stack_name="billmig", region="us-east-1"),
            endpoints=lambda: {"aws": "http://127.0.0.1:1", "stripe": None},
            clock=WorldClock(tmp_path / "clock.json"),
        )
        stages = [Stage(s.name, self._stage(s.name)) for s in demo_metronome.STAGES]
        monkeypatch.setattr(demo_metronome, "STAGES", stages)  # what `run_metronome_act` runs
        monkeypatch.setattr(demo, "STAGES", stages)  # what the report lists
        monkeypatch.setattr(demo, "demo_stack", self._demo_stack)
        monkeypatch.setattr(demo, "run_stigg_demo", lambda console, stack, work: self.stigg_ok)

    @contextmanager
    def _demo_stack(self, state_dir: Path) -> Iterator[Any]:
        yield self.stack

    def _stage(self, name: str) -> Callable[[demo_metronome.MetronomeWorld], str]:
        def run(world: demo_metronome.MetronomeWorld) -> str:
            self.ran.append(name)
            self.customers.append(world.customers)
            if name == self.surprised:
                raise Surprise([DIFFERENCE, "the awkward customers were not left out"])
            return f"{name} done"

        return run

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["demo", *args], env={"COLUMNS": "200"})


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Demo]:
    yield Demo(monkeypatch, tmp_path)
    aws_target.unpin()  # the Metronome act pins the clients to the stack's endpoint


def test_a_surprised_stage_stops_the_demo_and_it_exits_non_zero(stand_in: Demo, tmp_path: Path) -> None:
    stand_in.surprised = SURPRISED
    result = stand_in.run("--customers", "5", "--state-dir", str(tmp_path / "demo"))
    names = [s.name for s in demo_metronome.STAGES]
    assert result.exit_code == 1, result.output
    assert stand_in.ran == names[: names.index(SURPRISED) + 1]  # nothing after the surprise ran
    assert f"{SURPRISED}: not as expected" in result.output
    assert f"  - {DIFFERENCE}\n" in result.output and "  - the awkward customers were not left out" in result.output
    assert re.search(rf"│ {SURPRISED}\s+│ surprise\s+│", result.output)  # the report's stage table says so
    assert "demo did not go as expected" in result.output and "demo passed" not in result.output


def test_a_surprise_in_the_stigg_act_alone_makes_it_exit_non_zero(stand_in: Demo, tmp_path: Path) -> None:
    stand_in.stigg_ok = False
    result = stand_in.run("--state-dir", str(tmp_path / "demo"))
    assert result.exit_code == 1, result.output
    assert stand_in.ran == [s.name for s in demo_metronome.STAGES]  # the Metronome act still ran, and passed
    assert "demo did not go as expected" in result.output


def test_with_no_surprise_it_exits_zero(stand_in: Demo, tmp_path: Path) -> None:
    result = stand_in.run("--state-dir", str(tmp_path / "demo"))
    assert result.exit_code == 0, result.output
    assert stand_in.ran == [s.name for s in demo_metronome.STAGES]
    assert "demo passed" in result.output and "not as expected" not in result.output


def test_customers_defaults_to_fifty(stand_in: Demo, tmp_path: Path) -> None:
    assert stand_in.run("--state-dir", str(tmp_path / "default")).exit_code == 0
    assert stand_in.run("--customers", "7", "--state-dir", str(tmp_path / "seven")).exit_code == 0
    stages = len(demo_metronome.STAGES)
    assert stand_in.customers == [50] * stages + [7] * stages  # what every stage of the act was given
    help_text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert "--customers" in help_text and "[default: 50]" in help_text
