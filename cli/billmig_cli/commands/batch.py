"""`billmig batch`: start a migration batch's execution and read each customer's state from the progress store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from billmig_cli import aws_target, executions
from billmig_cli.batch_file import BatchFileError, load_batch_file
from billmig_cli.commands.console import print_execution_link
from billmig_cli.options import StackName, console

app = typer.Typer(help="Start and inspect migration batches.", no_args_is_help=True)

STATE_MACHINES = {"preflight": "PreflightStateMachineArn"}


@app.command("start")
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
    print_execution_link(console, execution_arn)
    if wait:
        result = executions.wait(sfn, execution_arn)
        console.print(f"{result['status']}")
        if result["status"] != "SUCCEEDED":
            raise typer.Exit(1)


@app.command("status")
def batch_status(
    batch_id: Annotated[str, typer.Option("--batch-id")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Each customer's state in a batch, from the progress store."""
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
    from billmig.progress import SubjectState

    store = DynamoDBProgressStore(
        aws_target.stack_outputs(stack_name)["ProgressTableName"], client=aws_target.client("dynamodb")
    )
    table = Table("customer", "state", "step", "attempts", "last error", title=f"batch {batch_id}")
    for state in SubjectState:
        for progress in store.subjects_in_state(batch_id, state):
            step = progress.steps.get(progress.current_step or "")
            error = step.last_error if step else None
            table.add_row(
                progress.subject,
                state.value,
                progress.current_step or "",
                str(step.attempts if step else 0),
                f"{error.type}: {error.message}" if error else "",
            )
    console.print(table)
