"""`billmig local seed stripe --customers N --seed S`: a realistic book of business in the running Stripe emulator,
created only through the official SDK (see `book_of_business`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import stripe
import typer
from rich.console import Console
from rich.table import Table

from . import advance_test_clocks
from .book_of_business import counts, ensure_catalogue, manifest, populate


def emulator_url(state_dir: Path) -> str:
    """The Stripe URL that `billmig local up` recorded in `<state dir>/endpoints.json`."""
    path = state_dir / "endpoints.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is `billmig local up` running (with --state-dir {state_dir})?")
    url = json.loads(path.read_text()).get("stripe")
    if not url:
        raise FileNotFoundError(f"{path} records no stripe endpoint: the emulator is not running")
    return str(url)


def seed(
    customers: Annotated[int, typer.Option("--customers", help="How many customers.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same book.")] = 7,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the local stack keeps its state.")] = Path(
        ".local"
    ),
    url: Annotated[str | None, typer.Option("--url", help="Stripe base URL (default: from endpoints.json).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Customers seeded in parallel.")] = 4,
    manifest_path: Annotated[
        Path | None, typer.Option("--manifest", help="Write the seeded ids and profiles as JSON here.")
    ] = None,
) -> None:
    """Create the catalogue, customers on test clocks, subscriptions, usage, credit grants and their invoices."""
    console = Console()
    try:
        base_url = url or emulator_url(state_dir)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from exc
    client = stripe.StripeClient(
        "sk_test_billmig_seed", base_addresses={"api": base_url, "meter_events": base_url}, max_network_retries=2
    )
    began = time.perf_counter()
    now = int(httpx_now(base_url)) // 3600 * 3600  # the book is dated at the hour (a rerun reuses the first date)
    book = ensure_catalogue(client, now)
    seeded = populate(client, book, customers=customers, seed=seed, workers=workers)
    advance_test_clocks(base_url)  # the history ends at `as_of`; from here on every clock is at the world's instant
    tally = counts(client, book, seeded)
    seconds = time.perf_counter() - began
    table = Table(title=f"Stripe book of business: seed {seed}, {customers} customers, {seconds:.1f} s")
    table.add_column("object")
    table.add_column("count", justify="right")
    for name, count in tally.items():
        table.add_row(name, str(count))
    console.print(table)
    profiles: dict[str, int] = {}
    for customer in seeded:
        profiles[customer.profile] = profiles.get(customer.profile, 0) + 1
    console.print("profiles: " + ", ".join(f"{k} {v}" for k, v in sorted(profiles.items())), soft_wrap=True)
    if manifest_path is not None:
        manifest_path.write_text(json.dumps(manifest(book, seeded, seed) | {"counts": tally}, indent=2) + "\n")
        console.print(f"manifest written to {manifest_path}", soft_wrap=True)


def httpx_now(base_url: str) -> float:
    """The emulator's world clock (its control plane), so the book is dated in the local world's time."""
    import httpx

    return float(httpx.get(base_url.rstrip("/") + "/_emulator/clock", timeout=10).json()["now"])
