"""`billmig parity`: the parallel run's parity checks, their reports and the cutover gate's overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from billmig.money import format_cents
from rich.table import Table

from billmig_cli import parity_report
from billmig_cli.options import StackName, console

app = typer.Typer(help="Parity of the parallel run: checks, reports, approvals.", no_args_is_help=True)


@app.command("report")
def report(
    run: Annotated[str | None, typer.Option("--run", help="The parity run id; the newest run by default.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where <run>.json, .csv and .html go.")] = Path("."),
    open_page: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
    stack_name: StackName = "billmig",
) -> None:
    """Fetch a parity run's report (JSON, CSV, one self-contained HTML page), or build it from the ledger."""
    try:
        found = parity_report.fetch_report(run, out, stack_name=stack_name)
    except parity_report.NoParityRun as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    summary = found.summary
    table = Table(title=f"parity run {found.parity_run_id} ({found.source})")
    for column in ("checked", "within tolerance", "held back", "failed", "skipped", "differences", "difference"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(summary[k]) for k in ("customers_checked", "customers_within_tolerance", "customers_held_back")),
        *(str(summary[k]) for k in ("customers_failed", "customers_skipped", "differences")),
        format_cents(summary["cents_of_difference"]),
    )
    console.print(table)
    console.print(found.status_detail)
    console.print(f"report: {found.json_path}  {found.csv_path}  {found.html_path}", soft_wrap=True)
    if open_page and not parity_report.open_in_browser(found.html_path):
        console.print(f"no browser to open; the page is {found.html_path.resolve().as_uri()}", soft_wrap=True)
