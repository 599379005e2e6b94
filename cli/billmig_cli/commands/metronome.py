"""`billmig metronome plan|start|status|rollback|cleanup`: the Stripe-to-Metronome migration."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from billmig.metronome.errors import InvalidMigrationConfig
from billmig.metronome.plan import BatchPlan
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from billmig_cli import aws_target
from billmig_cli import metronome_migration as runner
from billmig_cli.commands.console import print_execution_link
from billmig_cli.options import StackName, console

app = typer.Typer(
    help="Migrate Stripe customers to Metronome contracts (plan, start, status, rollback, cleanup).",
    no_args_is_help=True,
)

ConfigOption = Annotated[Path, typer.Option("--config", help="The migration config (JSON or YAML).")]
BatchOption = Annotated[Path | None, typer.Option("--batch", help="A batch file: {batch_id, customers}.")]
AllActive = Annotated[bool, typer.Option("--all-active", help="Every Stripe customer with a live subscription.")]
BatchId = Annotated[str, typer.Option("--batch-id", help="The batch id with --all-active.")]
ParallelRunStart = Annotated[str | None, typer.Option("--parallel-run-start", help="Overrides the config.")]
CutoverAt = Annotated[str | None, typer.Option("--cutover-at", help="Overrides the config.")]
Strategy = Annotated[str | None, typer.Option("--strategy", help="parallel or hard; overrides the config.")]
StripeKey = Annotated[str, typer.Option("--stripe-api-key", envvar=runner.STRIPE_KEY_VARIABLE, show_default=False)]
StripeBase = Annotated[str | None, typer.Option("--stripe-api-base", envvar="STRIPE_API_BASE")]
MetronomeToken = Annotated[
    str, typer.Option("--metronome-token", envvar=runner.METRONOME_TOKEN_VARIABLE, show_default=False)
]
MetronomeBase = Annotated[str | None, typer.Option("--metronome-api-base", envvar="METRONOME_BASE_URL")]


def _refuse(problems: list[str]) -> typer.Exit:
    console.print(f"[red]{len(problems)} problem(s); nothing was written[/]", soft_wrap=True)
    for problem in problems:
        console.print(f"  - {problem}", soft_wrap=True, markup=False, highlight=False)
    return typer.Exit(2)


def _prepare(
    config: Path,
    batch: Path | None,
    all_active: bool,
    batch_id: str,
    overrides: dict[str, Any],
    vendors: runner.Vendors,
) -> tuple[runner.Batch, Any, BatchPlan]:
    if (batch is None) == (not all_active):
        raise _refuse(["give exactly one of --batch FILE or --all-active"])
    try:
        chosen = runner.load_batch(batch) if batch is not None else runner.all_active(vendors, batch_id)
        resolved = runner.resolved_config(config, vendors, overrides)
    except InvalidMigrationConfig as exc:
        raise _refuse(exc.problems) from exc
    return chosen, resolved, runner.plan(chosen, resolved, vendors)


def print_plan(batch_plan: BatchPlan) -> None:
    table = Table("customer", "bucket", "actions", "grants moved", title="plan")
    for c in batch_plan.customers:
        moved = [f"{g['grant']} {g['remaining']}c -> {g['target']} p{g['priority']}" for g in c.grants]
        table.add_row(c.stripe_customer_id, c.bucket, ", ".join(c.actions), "\n".join(moved))
    console.print(table)
    console.print("totals: " + ", ".join(f"{k} {v}" for k, v in batch_plan.totals().items()), soft_wrap=True)
    calls = Table("endpoint", "calls", title="API budget")
    for endpoint, n in sorted(batch_plan.calls().items()):
        calls.add_row(endpoint, str(n))
    console.print(calls)
    d = batch_plan.duration()
    console.print(
        f"estimated at the vendors' limits: Stripe {d['stripe']:.1f} s (100/s live, 25/s per endpoint), "
        f"Metronome {d['metronome']:.1f} s (no published rate; 100/s assumed): at least {d['bound']:.1f} s",
        soft_wrap=True,
    )
    for c in batch_plan.blocked:
        console.print(f"[red]cannot migrate[/] {c.stripe_customer_id}: {'; '.join(c.reasons)}", soft_wrap=True)


@app.command("plan")
def plan_command(
    config: ConfigOption,
    batch: BatchOption = None,
    all_active: AllActive = False,
    batch_id: BatchId = "all-active",
    parallel_run_start: ParallelRunStart = None,
    cutover_at: CutoverAt = None,
    strategy: Strategy = None,
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON on stdout.")] = False,
    stripe_key: StripeKey = "",
    stripe_base: StripeBase = None,
    metronome_token: MetronomeToken = "",
    metronome_base: MetronomeBase = None,
) -> None:
    """A dry run: reads Stripe and Metronome, writes nothing. Exit 0 only when every customer can migrate."""
    vendors = runner.connect(stripe_key, stripe_base, metronome_token, metronome_base)
    overrides = {"parallel_run_start": parallel_run_start, "cutover_at": cutover_at, "strategy": strategy}
    _, _, batch_plan = _prepare(config, batch, all_active, batch_id, overrides, vendors)
    if as_json:
        print(json.dumps(batch_plan.as_json(), indent=2))
    else:
        print_plan(batch_plan)
    if batch_plan.blocked:
        raise typer.Exit(1)


@app.command("start")
def start_command(
    config: ConfigOption,
    batch: BatchOption = None,
    all_active: AllActive = False,
    batch_id: BatchId = "all-active",
    parallel_run_start: ParallelRunStart = None,
    cutover_at: CutoverAt = None,
    strategy: Strategy = None,
    exclude_blocked: Annotated[bool, typer.Option("--exclude-blocked", help="Start the others; record why.")] = False,
    stripe_key: StripeKey = "",
    stripe_base: StripeBase = None,
    metronome_token: MetronomeToken = "",
    metronome_base: MetronomeBase = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Check everything the plan checks, then start (or resume) the batch's execution."""
    vendors = runner.connect(stripe_key, stripe_base, metronome_token, metronome_base)
    overrides = {"parallel_run_start": parallel_run_start, "cutover_at": cutover_at, "strategy": strategy}
    chosen, resolved, batch_plan = _prepare(config, batch, all_active, batch_id, overrides, vendors)
    try:
        started = runner.start(chosen, resolved, batch_plan, exclude_blocked=exclude_blocked, stack_name=stack_name)
    except runner.BatchBlocked as exc:
        raise _refuse(
            [f"{c}: {why}" for c, why in exc.blocked.items()] + ["nothing started: fix them or --exclude-blocked"]
        ) from exc
    verb = "already running" if started.already_running else ("resumed" if started.resumed else "started")
    console.print(
        f"batch {started.batch_id}: {started.customers} customers, {verb}: {started.execution_arn}", soft_wrap=True
    )
    print_execution_link(console, started.execution_arn)
    for customer, why in started.excluded.items():
        console.print(f"  excluded {customer}: {why}", soft_wrap=True, markup=False)


@app.command("status")
def status_command(
    batch: Annotated[str, typer.Option("--batch", help="The batch id (or a batch file).")],
    watch: Annotated[bool, typer.Option("--watch", help="Follow until every customer settled.")] = False,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Counts per step and phase, failures with reasons, and a progress bar."""
    batch_id = runner.load_batch(Path(batch)).batch_id if batch.endswith(".json") else batch
    current = runner.status(batch_id, stack_name=stack_name)
    if watch:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("parallel run begun", total=current.customers)
            while current.done + len(current.failures) < current.customers:
                progress.update(task, completed=current.done, total=current.customers)
                time.sleep(1)
                current = runner.status(batch_id, stack_name=stack_name)
            progress.update(task, completed=current.done, total=current.customers)
    table = Table("step", *(s for s in ("succeeded", "running", "failed", "pending")), title=f"batch {batch_id}")
    for step, counts in current.steps.items():
        table.add_row(step, *(str(counts[s]) for s in ("succeeded", "running", "failed", "pending")))
    console.print(table)
    console.print("phases: " + ", ".join(f"{k} {v}" for k, v in current.phases.items()), soft_wrap=True)
    console.print(f"execution: {current.execution}", soft_wrap=True)
    if current.outcome:
        console.print(f"outcome: {escape(current.outcome)}", soft_wrap=True)
    for customer, why in current.held_back.items():
        console.print(f"[yellow]held back[/] {customer}: {escape(why)}", soft_wrap=True)
    for customer, why in current.failures.items():
        console.print(f"[red]failed[/] {customer}: {why}", soft_wrap=True)
    if current.failures:
        raise typer.Exit(1)


@app.command("rollback")
def rollback_command(
    customer: Annotated[str, typer.Option("--customer", help="The Stripe customer id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded with who and when.")],
    batch: Annotated[str | None, typer.Option("--batch", help="Its batch (default: its latest).")] = None,
    requested_by: Annotated[str, typer.Option("--by", help="Who asks (default: the OS user).")] = "",
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Back to Stripe, until its first Metronome invoice is finalized (then refused, nothing written)."""
    try:
        done = runner.rollback(
            customer, reason, requested_by or getpass.getuser(), batch_id=batch, stack_name=stack_name
        )
    except runner.FunctionFailed as exc:
        console.print(f"[red]{exc.error_type}[/]: {exc.message}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc
    console.print(
        f"{customer} (batch {done['batch_id']}): {done['outcome']}, by {done['requested_by']} at "
        f"{done['requested_at']}: {done['reason']}",
        soft_wrap=True,
        markup=False,
    )
    for step, outcome in done["steps"].items():
        console.print(f"  {step}: {outcome}", soft_wrap=True, markup=False)


def print_cleanup(plan: dict[str, Any], title: str) -> None:
    table = Table("kind", "id", "action", "why kept", title=title)
    for price in plan["archive_prices"]:
        table.add_row("price", price, "archive", "")
    for price, why in plan["keep_prices"].items():
        table.add_row("price", price, "keep", why)
    for meter in plan["deactivate_meters"]:
        table.add_row("meter", meter, "deactivate", "")
    for meter, why in plan["keep_meters"].items():
        table.add_row("meter", meter, "keep", why)
    console.print(table)
    console.print(
        f"{len(plan['customers'])} customers to cleaned_up (Stripe usage writes off); left alone: "
        + (", ".join(f"{c} ({p})" for c, p in plan["left_alone"].items()) or "none"),
        soft_wrap=True,
    )


@app.command("cleanup")
def cleanup_command(
    batch: Annotated[str, typer.Option("--batch", help="The batch id.")],
    plan: Annotated[bool, typer.Option("--plan", help="List what it would do; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The plan (or result) as JSON on stdout.")] = False,
    stripe_key: StripeKey = "",
    stripe_base: StripeBase = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Retire a cut-over batch's Stripe side: router off Stripe, unused prices archived, unused meters deactivated."""
    if plan:
        from billmig.adapters.stripe_sdk import StripeSDKSource

        found = runner.cleanup_plan(batch, StripeSDKSource.connect(stripe_key, stripe_base), stack_name=stack_name)
        document = found.model_dump(mode="json")
    else:
        try:
            result = runner.cleanup(batch, stack_name=stack_name)
        except runner.FunctionFailed as exc:
            console.print(f"[red]{exc.error_type}[/]: {exc.message}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from exc
        document = result["plan"]
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        print_cleanup(document, f"clean-up {'plan' if plan else 'done'}: batch {batch}")
