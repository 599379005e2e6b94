"""`billmig console`: the state machine console, against AWS (default credentials) or any endpoint URL."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from billmig_cli import aws_target
from billmig_cli.options import StackName, console


def console_command(
    port: Annotated[int, typer.Option("--port", help="Port to serve the console on (127.0.0.1).")] = 8080,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="AWS endpoint (the local stack's URL)."),
    ] = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Serve the read-only console: executions, their graphs and histories, and each batch's customers."""
    from billmig_cli.console.links import is_local
    from billmig_cli.console.server import ConsoleServer

    aws_target.use_endpoint(endpoint_url)
    current = aws_target.endpoint_url()
    local = is_local(current)
    server = ConsoleServer(aws_target.client, port=port, stack_name=stack_name, local=local).start()
    console.print(f"[bold green]console[/] {server.url}  ({'local stack ' + str(current) if local else 'AWS'})")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()


def print_execution_link(out: Console, execution_arn: str) -> None:
    """What every command that starts or shows an execution prints under its ARN."""
    from billmig_cli.console.links import execution_link

    link = execution_link(execution_arn)
    if link:
        out.print(f"  console {link}", soft_wrap=True, highlight=False)
