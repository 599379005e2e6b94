"""`billmig local seed metronome`: the standard catalogue in the running Metronome emulator, through the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from metronome import Metronome
from rich.console import Console
from rich.table import Table

from .catalogue_seed import CatalogueConflict, SeededCatalogue, seed_catalogue

CATALOGUE_FILE = "metronome-catalogue.json"
"""Written to the state dir: where the migration finds the rate card and product ids."""


def emulator_url(state_dir: Path) -> str:
    """The Metronome URL that `billmig local up` recorded in `<state dir>/endpoints.json`."""
    path = state_dir / "endpoints.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is `billmig local up` running (with --state-dir {state_dir})?")
    url = json.loads(path.read_text()).get("metronome")
    if not url:
        raise FileNotFoundError(f"{path} records no metronome endpoint: the emulator is not running")
    return str(url)


def seed(
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the local stack keeps its state.")] = Path(
        ".local"
    ),
    url: Annotated[str | None, typer.Option("--url", help="Metronome base URL (default: from endpoints.json).")] = None,
    token: Annotated[str, typer.Option("--token", envvar="METRONOME_BEARER_TOKEN")] = "local",  # noqa: S107 - any token
) -> None:
    """Create the standard rate card, billable metrics, products and the commit/credit products (idempotent)."""
    console = Console()
    try:
        base_url = url or emulator_url(state_dir)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    try:
        with Metronome(bearer_token=token, base_url=base_url) as client:
            seeded = seed_catalogue(client)
    except CatalogueConflict as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    state_dir.mkdir(parents=True, exist_ok=True)
    out = state_dir / CATALOGUE_FILE
    out.write_text(json.dumps(seeded.ids(), indent=2) + "\n")
    console.print(summary(seeded))
    console.print(f"{len(seeded.created)} created, ids in {out}", soft_wrap=True)


def summary(seeded: SeededCatalogue) -> Table:
    table = Table(title=f"Metronome catalogue (rate card {seeded.rate_card_name} {seeded.rate_card_id})")
    table.add_column("offering")
    table.add_column("billable metric")
    table.add_column("USAGE product")
    table.add_column("rates")
    for key, product_id in seeded.usage_product_ids.items():
        rates = [
            f"{r['rate_type']} {json.dumps(r['pricing_group_values']) if r['pricing_group_values'] else ''}".strip()
            for r in seeded.rates
            if r["offering"] == key
        ]
        table.add_row(key, seeded.billable_metric_ids[key], product_id, "\n".join(rates))
    table.add_row("prepaid commit (FIXED)", "", seeded.prepaid_commit_product_id, "")
    table.add_row("promotional credit (FIXED)", "", seeded.promotional_credit_product_id, "")
    return table
