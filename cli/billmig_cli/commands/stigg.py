"""`billmig stigg`: import customers, subscriptions and usage into Stigg, in its guide's order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from billmig_cli import aws_target
from billmig_cli.commands.console import print_execution_link
from billmig_cli.options import StackName, console

app = typer.Typer(help="Import customers, subscriptions and usage into Stigg.", no_args_is_help=True)


@app.command("import")
def stigg_import(
    customers_file: Annotated[Path | None, typer.Option("--customers-file", help="Stigg's customers.json.")] = None,
    subscriptions_file: Annotated[
        list[Path] | None, typer.Option("--subscriptions-file", help="Stigg's subscriptions.json; repeatable.")
    ] = None,
    usage_file: Annotated[Path | None, typer.Option("--usage-file", help="Stigg's usage.json.")] = None,
    paid_plan: Annotated[
        list[str] | None,
        typer.Option(
            "--paid-plan", help="A paid plan id: provisioned backdated, then its Stripe subscription cancelled."
        ),
    ] = None,
    from_stripe: Annotated[
        bool, typer.Option("--from-stripe", help="Build the records from Stripe (STRIPE_API_KEY) with --config.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON: Stripe prices -> Stigg plans, add-ons, features.")
    ] = None,
    stripe_api_base: Annotated[
        str | None, typer.Option("--stripe-api-base", envvar="STRIPE_API_BASE", help="Stripe API base URL.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the files and stop: nothing is sent.")] = False,
    import_id: Annotated[str | None, typer.Option("--import-id", help="Reuse to resume an earlier import.")] = None,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="Where the JSON and CSV reports go.")] = Path("."),
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Import into Stigg in its guide's order: customers, subscriptions (free, custom, paid), usage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from billmig_cli import stigg_import as runner

    files = runner.ImportFiles(customers=customers_file, subscriptions=list(subscriptions_file or []), usage=usage_file)
    import_id = import_id or runner.new_import_id()
    paid_plans = list(paid_plan or [])
    try:
        if from_stripe:
            api_key = os.environ.get(runner.STRIPE_KEY_VARIABLE)
            if config is None or not api_key:
                raise runner.ImportRefused([f"--from-stripe needs --config and {runner.STRIPE_KEY_VARIABLE}"])
            files, configured = runner.files_from_stripe(
                config, report_dir / f"{import_id}-from-stripe", api_key=api_key, api_base=stripe_api_base
            )
            paid_plans += configured
            console.print(f"records built from Stripe: {report_dir / f'{import_id}-from-stripe'}", soft_wrap=True)
        counts = runner.check_files(files)
    except runner.ImportRefused as exc:
        console.print(f"[red]{len(exc.problems)} problem(s); nothing was sent[/]", soft_wrap=True)
        for problem in exc.problems:
            console.print(f"  - {problem}", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(1) from exc
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    if dry_run:
        console.print(f"dry run: {summary}: every record is valid; nothing was sent", soft_wrap=True)
        return
    started = runner.start_import(files, import_id=import_id, paid_plan_ids=paid_plans, stack_name=stack_name)
    console.print(f"import {started.import_id}: {summary}\nstarted {started.execution_arn}", soft_wrap=True)
    print_execution_link(console, started.execution_arn)
    if not wait:
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("records", total=started.records)
        result = runner.follow(started, stack_name=stack_name, on_progress=lambda n: progress.update(task, completed=n))
    if result["status"] != "SUCCEEDED":
        console.print(f"[red]{result['status']}[/] {runner.failure_of(result)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    report, json_path, csv_path = runner.fetch_report(started.import_id, stack_name=stack_name, report_dir=report_dir)
    table = Table("entity", "created", "updated", "skipped", "failed", title=f"import {started.import_id}")
    for entity, totals in report["totals"].items():
        if any(totals.values()):
            table.add_row(entity, *(str(totals[k]) for k in ("created", "updated", "skipped", "failed")))
    console.print(table)
    console.print(f"report: {json_path}  {csv_path}")
    failures = {entity: t["failed"] for entity, t in report["totals"].items() if t["failed"] and entity != "chunks"}
    if failures or report.get("status") == "completed with errors":
        failed_counts = ", ".join(f"{number} {name}" for name, number in failures.items())
        console.print(
            f"[red]completed with errors[/]: {sum(failures.values())} failed ({failed_counts})", soft_wrap=True
        )
        for line in runner.failed_rows(report):
            console.print(f"  - {line}", soft_wrap=True, markup=False, highlight=False)
        console.print(f"resume: {runner.resume_command(started.import_id)}", soft_wrap=True, markup=False)
        raise typer.Exit(1)
    console.print(f"completed: import {started.import_id}", soft_wrap=True)
