"""What every command group shares: the terminal, and the options that name the local state and the stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where the local stack keeps its state.")]
StackName = Annotated[str, typer.Option("--stack-name", help="The CloudFormation stack to drive.")]
