"""`billmig demo`: the main job on the local stack, from nothing, with a report."""

from __future__ import annotations

from typing import Annotated

import typer

from billmig_cli import aws_target
from billmig_cli.options import StateDir, console


def demo(
    customers: Annotated[
        int, typer.Option(help="How many Stripe customers the Metronome act seeds and migrates.")
    ] = 50,
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR / "demo",
) -> None:
    """Run the main job on the local stack from nothing and print a report."""
    from billmig_cli.demo import run_demo

    raise typer.Exit(run_demo(console, customers=customers, state_dir=state_dir))
