"""`make demo`: the whole local world from nothing, then the two migrations on it, and a report.

Two acts: the Stigg import, and the Metronome lifecycle of a seeded Stripe book (`demo_metronome`: named stages,
each checking its own expectations, and a closing report; a surprise makes the demo exit non-zero).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from billmig_cli.demo_lifecycle import LifecycleReport, print_report
from billmig_cli.demo_metronome import DEMO_CONCURRENCY, STAGES, run_metronome_act
from billmig_cli.demo_stigg import run_stigg_demo

# Retry back-off at a tenth of the ASL intervals, on the world clock: the cutover Map is as wide as the batch, and its
# gates fire together at the decision instant over 4 environments; retried at once (the local default) a throttled
# gate would spend its attempts in milliseconds.
DEMO_RETRY_SCALE = 0.1


@contextmanager
def demo_stack(state_dir: Path) -> Iterator[Any]:
    """A local stack from nothing in `state_dir`, sized for the demo."""
    from billmig_local.stack import LocalStack, StackSettings

    shutil.rmtree(state_dir, ignore_errors=True)
    # Every Map of the demo runs at the Lambda concurrency (a wider Map is throttled, and its retries come at once).
    parameters = {"Stage": "local", "ParityConcurrency": str(DEMO_CONCURRENCY)}
    settings = StackSettings(
        state_dir=state_dir.resolve(),
        lambda_concurrency=DEMO_CONCURRENCY,
        parameters=parameters,
        retry_scale=DEMO_RETRY_SCALE,
    )
    with LocalStack(settings) as stack:
        yield stack


def metronome_act_on_its_own_stack(
    state_dir: Path, customers: int, stage_count: int | None = None
) -> tuple[LifecycleReport, str]:
    """The Metronome act alone (its first `stage_count` stages) on a stack of its own, with its report and what it
    printed. The act walks the world clock months ahead and seeds the standard book: in a process of its own it
    shares neither with anyone."""
    console = Console(record=True, width=200)
    with demo_stack(state_dir) as stack:
        report = run_metronome_act(console, stack, customers=customers, stages=STAGES[:stage_count])
        print_report(console, report, STAGES)
    return report, console.export_text()


def run_demo(console: Console, *, customers: int, state_dir: Path) -> int:
    began = time.monotonic()
    with demo_stack(state_dir) as stack:
        up_seconds = time.monotonic() - began
        console.rule("[bold]billmig demo[/]: the local world")
        console.print(
            f"local AWS {stack.endpoint}: stack [bold]{stack.settings.stack_name}[/] deployed from "
            f"template.yaml in {up_seconds:.1f} s"
        )
        for name, url in stack.endpoints().items():
            if name != "aws":
                console.print(f"  {name:<10} {url or '[dim]not built yet[/]'}")

        stigg_ok = run_stigg_demo(console, stack, state_dir.resolve() / "stigg-import")
        console.rule(f"[bold]Stripe to Metronome[/]: the lifecycle of {customers} customers")
        report = run_metronome_act(console, stack, customers=customers)
        print_report(console, report, STAGES)

    ok = stigg_ok and report.passed
    console.rule("[bold green]demo passed[/]" if ok else "[bold red]demo did not go as expected[/]")
    console.print(
        f"total {time.monotonic() - began:.1f} s (stack up {up_seconds:.1f} s)"
        f"; world clock now {datetime.fromtimestamp(stack.clock.now(), UTC).isoformat()}"
    )
    return 0 if ok else 1
