"""`billmig local`: the local stack (moto with the template deployed, plus the vendor emulators) and its controls."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from billmig_cli import aws_target
from billmig_cli.options import StackName, StateDir, console

app = typer.Typer(
    help="The local stack: moto with this template deployed, plus the vendor emulators.", no_args_is_help=True
)
clock_app = typer.Typer(
    help="The local world's clock (AWS, emulators and Stripe test clocks move together).", no_args_is_help=True
)
faults_app = typer.Typer(help="Make deployed functions fail on purpose, locally.", no_args_is_help=True)
seed_app = typer.Typer(help="Seed a vendor emulator through the vendor's own SDK.", no_args_is_help=True)
app.add_typer(clock_app, name="clock")
app.add_typer(faults_app, name="faults")
app.add_typer(seed_app, name="seed")


def _print_event(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


@app.command("up")
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


@app.command("translate")
def local_translate(
    output: Annotated[Path, typer.Option("--output", help="Where to write the translated CloudFormation JSON.")],
    template: Annotated[Path, typer.Option("--template")] = Path("template.yaml"),
) -> None:
    """Package and translate the SAM template offline (what cfn-lint checks)."""
    from billmig_local.packaging import translate_for_lint

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(translate_for_lint(template), indent=1))
    console.print(f"wrote {output}")


@app.command("invoke")
def local_invoke(
    function: Annotated[
        str, typer.Argument(help="A directory under functions/ (record_failure), a logical id or a deployed name.")
    ],
    event: Annotated[Path, typer.Option("--event", "-e", help="The event, as for `sam local invoke -e`.")],
    state_dir: StateDir = aws_target.DEFAULT_STATE_DIR,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Invoke a function deployed on the local stack with EVENT; print its result and its logs."""
    from billmig_cli.local_functions import deployed_function_name

    aws_target.local_control_url(state_dir)  # points boto3 at the local stack `local up` recorded
    try:
        name = deployed_function_name(function, aws_target.client("cloudformation"), stack_name)
    except LookupError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    response = aws_target.client("lambda").invoke(FunctionName=name, Payload=event.read_bytes(), LogType="Tail")
    result = response["Payload"].read().decode()
    logs = base64.b64decode(response.get("LogResult", "")).decode(errors="replace")
    if logs:
        console.print(logs.rstrip(), markup=False, highlight=False, soft_wrap=True)
    console.print(result, markup=False, highlight=False, soft_wrap=True)
    if response.get("FunctionError"):
        raise typer.Exit(1)


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
