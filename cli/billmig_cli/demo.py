"""`make demo`: the whole local world from nothing, then the two migrations on it, and a report.

Two acts: the Stigg import, and the Metronome lifecycle of a seeded Stripe book (`demo_metronome`: named stages,
each checking its own expectations, and a closing report; a surprise makes the demo exit non-zero).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from billmig_cli.demo_lifecycle import print_report
from billmig_cli.demo_metronome import DEMO_CONCURRENCY, STAGES, run_metronome_act
from billmig_cli.demo_stigg import run_stigg_demo


def run_demo(console: Console, *, customers: int, state_dir: Path) -> int:
    from billmig_local.stack import LocalStack, StackSettings

    began = time.monotonic()
    shutil.rmtree(state_dir, ignore_errors=True)
    # Every Map of the demo runs at the Lambda concurrency (a wider Map is throttled, and its retries come at once).
    parameters = {"Stage": "local", "ParityConcurrency": str(DEMO_CONCURRENCY)}
    settings = StackSettings(state_dir=state_dir.resolve(), lambda_concurrency=DEMO_CONCURRENCY, parameters=parameters)
    with LocalStack(settings) as stack:
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
