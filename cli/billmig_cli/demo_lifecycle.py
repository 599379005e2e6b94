"""The demo's lifecycle as a sequence of named stages, each a function that checks its own expectations, and the
report they fill in together.

A stage raises `Surprise` with what differed (the demo then stops and exits non-zero), or `NotAvailable` when the
piece it drives has not been built yet (the demo then stops after the last stage that ran and says so plainly).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rich.console import Console
from rich.table import Table

_World = TypeVar("_World")


class Surprise(Exception):
    """What a stage expected and what it found instead, one line each."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__("; ".join(differences))
        self.differences = differences


class NotAvailable(Exception):
    """The stage's piece is not part of this build (named, with what is missing)."""


@dataclass(frozen=True)
class Stage(Generic[_World]):
    name: str
    run: Callable[[_World], str]  # returns a one-line summary of what it did


@dataclass
class StageResult:
    name: str
    seconds: float
    outcome: str  # "passed", "surprise" or "not available"
    summary: str


@dataclass
class PeriodInvoices:
    stripe: int = 0
    metronome: int = 0
    delivered_to_stripe: int = 0


@dataclass
class LifecycleReport:
    """What the lifecycle did, as the closing report prints it. Money in cents."""

    customers: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    contracts: int = 0
    stripe_credit_remaining: int = 0
    metronome_credit: int = 0
    # the cut-over customers at their boundary: Stripe's remainder after its last invoice, Metronome's balances then
    boundary_credit: tuple[int, int] | None = None
    balances_settled: int = 0
    events_streamed: int = 0
    usage_rows: Counter[str] = field(default_factory=Counter)
    invoices: dict[str, PeriodInvoices] = field(default_factory=dict)
    parity: str = "not available"
    cleanup: str = "not run"
    stages: list[StageResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def passed(self) -> bool:
        return bool(self.stages) and all(s.outcome != "surprise" for s in self.stages)

    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.outcome == "passed"]

    def stopped_at(self) -> StageResult | None:
        return next((s for s in self.stages if s.outcome != "passed"), None)


def run_stages(console: Console, world: _World, stages: Sequence[Stage[_World]], report: LifecycleReport) -> bool:
    """Each stage in turn until one is surprised or not available; True when none was surprised."""
    for stage in stages:
        console.rule(f"[bold]{stage.name}[/]")
        began = time.monotonic()
        try:
            summary = stage.run(world)
        except Surprise as surprise:
            report.stages.append(StageResult(stage.name, time.monotonic() - began, "surprise", str(surprise)))
            console.print(f"[bold red]{stage.name}: not as expected[/]")
            for line in surprise.differences:
                console.print(f"  - {line}", style="red", soft_wrap=True, markup=False, highlight=False)
            return False
        except NotAvailable as missing:
            report.stages.append(StageResult(stage.name, time.monotonic() - began, "not available", str(missing)))
            console.print(f"[yellow]{stage.name}: not available in this build[/] ({missing})", soft_wrap=True)
            return True
        seconds = time.monotonic() - began
        report.stages.append(StageResult(stage.name, seconds, "passed", summary))
        console.print(f"[green]{stage.name}[/] ({seconds:.1f} s): {summary}", soft_wrap=True)
    return True


def expect(differences: list[str]) -> None:
    """Raise the stage's `Surprise` when anything differed."""
    if differences:
        raise Surprise(differences)


def print_report(console: Console, report: LifecycleReport, stages: Sequence[Stage[_World]]) -> None:
    console.rule("[bold]the lifecycle report[/]")
    outcomes = Table("customers by outcome", "count", title=f"{report.customers} Stripe customers")
    for outcome, count in sorted(report.outcomes.items()):
        outcomes.add_row(outcome, str(count))
    console.print(outcomes)
    matched = report.stripe_credit_remaining == report.metronome_credit
    console.print(
        f"contracts: {report.contracts}; credits moved: Stripe remaining ${report.stripe_credit_remaining / 100:,.2f}"
        f" = Metronome ${report.metronome_credit / 100:,.2f}" + ("" if matched else " [red](differs)[/]"),
        soft_wrap=True,
    )
    if report.boundary_credit is not None:
        left, held = report.boundary_credit
        console.print(
            f"credits at the boundary: Stripe left ${left / 100:,.2f} = Metronome ${held / 100:,.2f}"
            + ("" if left == held else " [red](differs)[/]")
            + f" ({report.balances_settled} customers' balances settled to Stripe's final remainder)",
            soft_wrap=True,
        )
    if report.events_streamed:
        rows = ", ".join(f"{n} {status}" for status, n in sorted(report.usage_rows.items()))
        console.print(f"usage: {report.events_streamed} events through the router; completeness {rows}")
    if report.invoices:
        invoices = Table("period", "Stripe invoices", "Metronome invoices", "delivered to Stripe", title="invoices")
        for period, counted in sorted(report.invoices.items()):
            invoices.add_row(period, str(counted.stripe), str(counted.metronome), str(counted.delivered_to_stripe))
        console.print(invoices)
    console.print(f"parity: {report.parity}", soft_wrap=True)
    console.print(f"clean-up: {report.cleanup}", soft_wrap=True)
    timings = Table("stage", "outcome", "seconds", title=f"stages ({report.seconds:.1f} s)")
    for result in report.stages:
        timings.add_row(result.name, result.outcome, f"{result.seconds:.1f}")
    for stage in stages[len(report.stages) :]:
        timings.add_row(stage.name, "not run", "-")
    console.print(timings)
    stopped = report.stopped_at()
    if stopped is not None and stopped.outcome == "not available":
        console.print(
            f"[yellow]the lifecycle stopped after {report.ran()[-1] if report.ran() else 'nothing'}[/]: "
            f"{stopped.name} is not available yet ({stopped.summary}); stages run: {', '.join(report.ran())}",
            soft_wrap=True,
        )
