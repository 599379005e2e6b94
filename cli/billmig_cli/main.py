"""`billmig`: run and watch migration batches, on AWS or on the local stack."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from billmig_cli import aws_target, executions
from billmig_cli.batch_file import BatchFileError, load_batch_file

console = Console()
app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_show_locals=False)
local_app = typer.Typer(
    help="The local stack: moto with this template deployed, plus the vendor emulators.", no_args_is_help=True
)
clock_app = typer.Typer(
    help="The local world's clock (AWS, emulators and Stripe test clocks move together).", no_args_is_help=True
)
faults_app = typer.Typer(help="Make deployed functions fail on purpose, locally.", no_args_is_help=True)
seed_app = typer.Typer(help="Seed a vendor emulator through the vendor's own SDK.", no_args_is_help=True)
batch_app = typer.Typer(help="Start and inspect migration batches.", no_args_is_help=True)
stigg_app = typer.Typer(help="Import customers, subscriptions and usage into Stigg.", no_args_is_help=True)
app.add_typer(stigg_app, name="stigg")
app.add_typer(local_app, name="local")
app.add_typer(batch_app, name="batch")
local_app.add_typer(clock_app, name="clock")
local_app.add_typer(faults_app, name="faults")
local_app.add_typer(seed_app, name="seed")

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where the local stack keeps its state.")]
StackName = Annotated[str, typer.Option("--stack-name", help="The CloudFormation stack to drive.")]

STATE_MACHINES = {"preflight": "PreflightStateMachineArn"}


@app.callback()
def main(
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="AWS endpoint (the local stack's URL)."),
    ] = None,
) -> None:
    aws_target.use_endpoint(endpoint_url)


# ----------------------------------------------------------------------------------------------------------------------
# local
# ----------------------------------------------------------------------------------------------------------------------
def _print_event(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option("--port", help="Port of the local AWS endpoint.")] = 4566,
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR,
    retry_scale: Annotated[
        float, typer.Option(help="Retry back-off as a fraction of the ASL interval (0 = retry at once).")
    ] = 0.0,
    lambda_concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Execution environments per function when the template sets no ReservedConcurrentExecutions "
            "(past them an invocation is throttled).",
        ),
    ] = 10,
) -> None:
    """Run the local AWS (with the template deployed) and every emulator, in the foreground, until Ctrl-C."""
    from billmig_local.stack import LocalStack, StackSettings

    stop = threading.Event()
    settings = StackSettings(
        port=port,
        state_dir=state_dir.resolve(),
        retry_scale=retry_scale,
        lambda_concurrency=lambda_concurrency,
        feed=_print_event,
    )
    stack = LocalStack(settings).start()
    console.print(f"[bold green]local AWS[/] {stack.endpoint}  (stack {settings.stack_name}, template deployed)")
    for name, url in stack.endpoints().items():
        if name != "aws":
            console.print(f"  {name:<10} {url or '[dim]not available yet[/]'}")
    console.print(f"  endpoints  {settings.state_dir / 'endpoints.json'}")
    console.print(f"  clock      {datetime.fromtimestamp(stack.clock.now(), UTC).isoformat()}")
    console.print(f"[dim]export AWS_ENDPOINT_URL={stack.endpoint}  — Ctrl-C stops[/]")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("stopping…")
    stack.stop()


@local_app.command("translate")
def local_translate(
    output: Annotated[Path, typer.Option("--output", help="Where to write the translated CloudFormation JSON.")],
    template: Annotated[Path, typer.Option("--template")] = Path("template.yaml"),
) -> None:
    """Package and translate the SAM template offline (what cfn-lint checks)."""
    from billmig_local.packaging import translate_for_lint

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(translate_for_lint(template), indent=1))
    console.print(f"wrote {output}")


def _control(method: str, path: str, state_dir: Path, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = aws_target.local_control_url(state_dir) + "/_billmig/" + path
    response = httpx.request(method, url, json=body, timeout=120)
    payload: dict[str, Any] = response.json()
    if response.status_code >= 400:
        console.print(f"[red]{payload.get('error', payload)}[/]")
        raise typer.Exit(1)
    return payload


@clock_app.command("show")
def clock_show(state_dir: StateDir = aws_target.DEFAULT_STATE_DIR) -> None:
    """Print the local world's time."""
    console.print(_control("GET", "clock", state_dir)["iso"])


@clock_app.command("set")
def clock_set(
    instant: Annotated[str, typer.Argument(help="RFC 3339 time (or Unix seconds); never earlier than now.")],
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR,
) -> None:
    """Move the local world forward to INSTANT."""
    _print_move(_control("POST", "clock", state_dir, {"set": instant}))


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[str, typer.Argument(help="e.g. 90s, 15m, 36h, 31d, 2w")],
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR,
) -> None:
    """Move the local world forward by DURATION."""
    _print_move(_control("POST", "clock", state_dir, {"advance": duration}))


def _print_move(moved: dict[str, Any]) -> None:
    console.print(
        f"now {moved['iso']} (moved {moved['moved_seconds']:.0f} s; "
        f"{moved['stripe_test_clocks_advanced']} Stripe test clocks advanced)",
        soft_wrap=True,
    )
    for firing in moved["fired"]:
        console.print(
            f"  schedule {firing['schedule']} fired for {firing['at']} -> {firing['execution_arn']}", soft_wrap=True
        )


@faults_app.command("add")
def faults_add(
    function: Annotated[str, typer.Option(help="Function name, or a part of it.")],
    error: Annotated[str, typer.Option(help="Error class name reported to Step Functions.")] = "VendorUnavailable",
    times: Annotated[int, typer.Option()] = 1,
    when: Annotated[str, typer.Option(help="before: fail instead of running; after: run, then fail.")] = "before",
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR,
) -> None:
    """Make the next TIMES invocations of a function fail with ERROR."""
    body = {"function": function, "error": error, "times": times, "when": when}
    console.print(_control("POST", "lambda-faults", state_dir, body))


@faults_app.command("clear")
def faults_clear(state_dir: StateDir = aws_target.DEFAULT_STATE_DIR) -> None:
    console.print(_control("DELETE", "lambda-faults", state_dir))


def _register_seeders() -> None:
    from billmig_local.emulators import available_seeders

    for name, seed in available_seeders().items():
        seed_app.command(name)(seed)


# Without the local extras installed, `local` commands explain themselves when used.
with contextlib.suppress(ImportError):
    _register_seeders()


# ----------------------------------------------------------------------------------------------------------------------
# batch
# ----------------------------------------------------------------------------------------------------------------------
@batch_app.command("start")
def batch_start(
    machine: Annotated[str, typer.Argument(help=f"One of: {', '.join(STATE_MACHINES)}")],
    batch_file: Annotated[Path, typer.Option("--file", help="JSON: {batch_id, customers: [...]} or a list.")],
    batch_id: Annotated[str | None, typer.Option(help="Overrides the file's batch_id.")] = None,
    not_before: Annotated[str | None, typer.Option(help="RFC 3339; the batch waits until then.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = False,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Validate a batch file and start one execution for it."""
    if machine not in STATE_MACHINES:
        console.print(f"[red]unknown state machine {machine!r}; known: {', '.join(STATE_MACHINES)}[/]")
        raise typer.Exit(2)
    try:
        batch = load_batch_file(batch_file, batch_id=batch_id)
    except BatchFileError as exc:
        console.print(f"[red]{batch_file}: {len(exc.problems)} problem(s); nothing was started[/]", soft_wrap=True)
        for problem in exc.problems:
            console.print(f"  - {problem}", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(1) from exc
    sfn = aws_target.client("stepfunctions")
    arn = aws_target.stack_outputs(stack_name)[STATE_MACHINES[machine]]
    payload = {
        "batch_id": batch.batch_id,
        "not_before": not_before or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "customers": [c.model_dump() for c in batch.customers],
    }
    name = executions.execution_name(machine, batch.batch_id, datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))
    execution_arn = executions.start(sfn, arn, payload, name)
    console.print(f"started {execution_arn}")
    if wait:
        result = executions.wait(sfn, execution_arn)
        console.print(f"{result['status']}")
        if result["status"] != "SUCCEEDED":
            raise typer.Exit(1)


@batch_app.command("status")
def batch_status(
    batch_id: Annotated[str, typer.Option("--batch-id")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Each customer's state in a batch, from the progress store."""
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
    from billmig.progress import CustomerState

    store = DynamoDBProgressStore(
        aws_target.stack_outputs(stack_name)["ProgressTableName"], client=aws_target.client("dynamodb")
    )
    table = Table("customer", "state", "step", "attempts", "last error", title=f"batch {batch_id}")
    for state in CustomerState:
        for progress in store.customers_in_state(batch_id, state):
            step = progress.steps.get(progress.current_step or "")
            error = step.last_error if step else None
            table.add_row(
                progress.customer_id,
                state.value,
                progress.current_step or "",
                str(step.attempts if step else 0),
                f"{error.type}: {error.message}" if error else "",
            )
    console.print(table)


# ----------------------------------------------------------------------------------------------------------------------
# stigg
# ----------------------------------------------------------------------------------------------------------------------
@stigg_app.command("import")
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
    if any(t["failed"] for t in report["totals"].values()):
        raise typer.Exit(1)


@app.command("demo")
def demo(
    customers: Annotated[int, typer.Option(help="How many customers in the demo batch.")] = 40,
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR / "demo",
) -> None:
    """Run the main job on the local stack from nothing and print a report."""
    from billmig_cli.demo import run_demo

    raise typer.Exit(run_demo(console, customers=customers, state_dir=state_dir))


if __name__ == "__main__":
    app()
