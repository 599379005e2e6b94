"""`billmig`: run and watch migration batches, on AWS or on the local stack."""

from __future__ import annotations

from typing import Annotated

import typer

from billmig_cli import aws_target
from billmig_cli.commands import demo, local, metronome, parity, stigg, usage
from billmig_cli.commands.console import console_command

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(stigg.app, name="stigg")
app.add_typer(metronome.app, name="metronome")
app.add_typer(usage.app, name="usage")
app.add_typer(parity.app, name="parity")
app.add_typer(local.app, name="local")
app.command("demo")(demo.demo)
app.command("console")(console_command)


@app.callback()
def main(
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="AWS endpoint (the local stack's URL)."),
    ] = None,
) -> None:
    aws_target.use_endpoint(endpoint_url)


if __name__ == "__main__":
    app()
