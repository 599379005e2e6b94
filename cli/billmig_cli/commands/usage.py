"""`billmig usage configure|send|replay|completeness`: the parallel run's usage router and its proof."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.usage_totals import VendorUsageTotals
from billmig.usage.completeness import CompletenessReport, check_completeness, month_bounds
from billmig.usage.errors import InvalidRouterConfig
from billmig.usage.mapping import UsageRouterConfig, parse_router_config, router_config_from_json
from billmig.usage.resend import ResendResult
from billmig.usage.routing import Destination
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from billmig_cli import aws_target
from billmig_cli.options import StackName, console
from billmig_cli.usage_feed import (
    queue_urls,
    read_events,
    replay_dead_letters,
    resend_from_journal,
    router_config,
    routes_of_run,
    send_events,
)

app = typer.Typer(help="Route usage events during the parallel run, and check both vendors got them all.")

StripeKey = Annotated[str, typer.Option("--stripe-api-key", envvar="STRIPE_API_KEY", show_default=False)]
StripeBase = Annotated[str | None, typer.Option("--stripe-api-base", envvar="STRIPE_API_BASE")]
MetronomeToken = Annotated[str, typer.Option("--metronome-token", envvar="METRONOME_BEARER_TOKEN", show_default=False)]
MetronomeBase = Annotated[str | None, typer.Option("--metronome-api-base", envvar="METRONOME_BASE_URL")]


def _refuse(problems: list[str], what: str) -> typer.Exit:
    console.print(f"[red]{len(problems)} problem(s); {what}[/]", soft_wrap=True)
    for problem in problems[:50]:
        console.print(f"  - {problem}", soft_wrap=True, markup=False, highlight=False)
    if len(problems) > 50:
        console.print(f"  ... and {len(problems) - 50} more", soft_wrap=True)
    return typer.Exit(2)


def _load_config(path: Path) -> UsageRouterConfig:
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise _refuse([f"{path}: no such file"], "nothing was written") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return parse_router_config(yaml.safe_load(text), str(path))
        return router_config_from_json(text, str(path))
    except yaml.YAMLError as exc:
        raise _refuse([f"{path}: not YAML: {exc}"], "nothing was written") from exc
    except InvalidRouterConfig as exc:
        raise _refuse(exc.problems, "nothing was written") from exc


@app.command("configure")
def configure_command(
    config: Annotated[Path, typer.Argument(help="The router config (JSON or YAML): rules from events to meters.")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Check the router config and store it where the router reads it (its SSM parameter)."""
    loaded = _load_config(config)
    name = aws_target.stack_outputs(stack_name)["UsageRouterConfigParameter"]
    aws_target.client("ssm").put_parameter(
        Name=name, Value=loaded.model_dump_json(), Type="String", Overwrite=True, Tier="Intelligent-Tiering"
    )
    console.print(f"router config stored in {name}: {len(loaded.rules)} rules, {loaded.stripe_transport} transport")


@app.command("send")
def send_command(
    file: Annotated[Path, typer.Argument(help="Usage events, one JSON object a line.")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Check every event of FILE, then put them all on the usage queue (nothing is sent if one is bad)."""
    events, problems = read_events(file)
    if problems:
        raise _refuse(problems, "nothing was sent")
    queue_url, _ = queue_urls(stack_name)
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("send", total=len(events))
        sent = send_events(queue_url, events, lambda n: bar.advance(task, n))
    console.print(f"{sent} events queued on {queue_url}", soft_wrap=True)


@app.command("replay")
def replay_command(
    dlq: Annotated[bool, typer.Option("--dlq", help="Move the dead-lettered events back to the usage queue.")] = False,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """After a fix, send the dead-lettered events through the router again (their ids keep them counted once)."""
    if not dlq:
        raise _refuse(["say what to replay: --dlq"], "nothing was moved")
    queue_url, dead_letter_url = queue_urls(stack_name)
    replayed = replay_dead_letters(queue_url, dead_letter_url)
    table = Table("reason", "events", title=f"{replayed.moved} events moved back to the usage queue")
    for reason, n in replayed.reasons.most_common():
        table.add_row(reason, str(n))
    console.print(table)


def print_report(report: CompletenessReport) -> None:
    # folded, never cut: an operator copies customer ids and meters out of this table, whatever the terminal's width
    table = Table(
        *(
            Column(header, overflow="fold")
            for header in ("customer", "meter", "period", "window", "Stripe", "Metronome", "difference", "status")
        )
    )
    for row in report.rows:
        colour = {"match": "green", "missing": "red", "extra": "yellow"}[row.status]
        table.add_row(
            f"{row.internal_id} ({row.stripe_customer_id})",
            row.meter,
            row.period,
            f"{row.window_start} .. {row.window_end}",
            row.stripe,
            row.metronome,
            row.difference,
            f"[{colour}]{row.status}[/]",
        )
    console.print(table)
    totals = report.totals()
    console.print(f"{totals['match']} match, {totals['missing']} missing, {totals['extra']} extra", soft_wrap=True)


@app.command("completeness")
def completeness_command(
    batch: Annotated[str, typer.Option("--batch", help="The migration batch (run id) to check.")],
    stripe_key: StripeKey,
    metronome_token: MetronomeToken,
    period: Annotated[str | None, typer.Option("--period", help="YYYY-MM; default every month so far.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 instant to check at (default now).")] = None,
    report_file: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    stripe_base: StripeBase = None,
    metronome_base: MetronomeBase = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Compare Stripe's and Metronome's usage per customer, meter and month; exit 1 if anything is missing or extra."""
    problems = []
    if period is not None:
        try:
            month_bounds(period)
        except ValueError as exc:
            problems.append(str(exc))
    now = datetime.now(UTC)
    if as_of is not None:
        try:
            now = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            problems.append(f"--as-of {as_of!r}: expected an RFC 3339 instant")
    if problems:
        raise _refuse(problems, "nothing was checked")
    outputs = aws_target.stack_outputs(stack_name)
    config = router_config(stack_name)
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))
    routes = list(routes_of_run(store.all_in_run(batch)))
    if not routes:
        raise _refuse([f"batch {batch!r}: no customer in it has reached the parallel run"], "nothing was checked")
    totals = VendorUsageTotals.connect(stripe_key, stripe_base, metronome_token, metronome_base)
    report = check_completeness(batch, routes, config, totals, now=now, period=period)
    print_report(report)
    if report_file is not None:
        report_file.write_text(json.dumps(report.as_json(), indent=2) + "\n")
        console.print(f"report written to {report_file}", soft_wrap=True)
    if report.problems:
        raise typer.Exit(1)


def _instant(value: str | None, flag: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{flag} {value!r}: expected an ISO 8601 instant (2026-11-01T00:00:00Z)")
        return None
    if parsed.tzinfo is None:
        problems.append(f"{flag} {value!r}: give the time zone (Z or +hh:mm)")
        return None
    return parsed.astimezone(UTC)


@app.command("resend")
def resend_command(
    customer: Annotated[str, typer.Option("--customer", help="The internal customer id (the events' customer_id).")],
    to: Annotated[Destination, typer.Option("--to", help="The vendor that did not get the events.")],
    since: Annotated[str | None, typer.Option("--since", help="ISO instant: events timed at or after it.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO instant: events timed before it.")] = None,
    stripe_key: Annotated[str | None, typer.Option("--stripe-api-key", envvar="STRIPE_API_KEY")] = None,
    stripe_base: StripeBase = None,
    metronome_token: Annotated[str | None, typer.Option("--metronome-token", envvar="METRONOME_BEARER_TOKEN")] = None,
    metronome_base: MetronomeBase = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Send to one vendor, from the usage journal, the customer's routed events it did not get (same ids: twice
    changes nothing). Events the vendor refuses (Stripe: older than 35 days) are dead-lettered with the reason."""
    problems: list[str] = []
    start, end = _instant(since, "--since", problems), _instant(until, "--until", problems)
    if start is not None and end is not None and end <= start:
        problems.append(f"--until {until} is not after --since {since}")
    key = stripe_key if to is Destination.STRIPE else metronome_token
    if not key:
        flag = "--stripe-api-key (STRIPE_API_KEY)" if to is Destination.STRIPE else "--metronome-token"
        problems.append(f"--to {to.value} needs {flag}")
    if problems:
        raise _refuse(problems, "nothing was sent")
    assert key is not None
    base = stripe_base if to is Destination.STRIPE else metronome_base
    result = resend_from_journal(stack_name, customer, to, start, end, key, base)
    print_resend(result)
    if result.refused or result.refused_before:
        raise typer.Exit(1)


def print_resend(result: ResendResult) -> None:
    table = Table("customer", "to", "journaled in window", "already there", "sent", "refused", title="usage resend")
    refused = len(result.refused) + result.refused_before
    table.add_row(
        result.internal_id,
        result.destination,
        str(result.considered),
        str(result.already),
        str(result.sent),
        f"[red]{refused}[/]" if refused else "0",
    )
    console.print(table)
    for event_id, reason in list(result.refused.items())[:20]:
        console.print(f"  - {event_id}: {reason}", soft_wrap=True, markup=False, highlight=False)
    if refused:
        console.print(f"{refused} refused: dead-lettered with the reason (`billmig usage replay --dlq` after a fix)")


@app.command("dual-write")
def dual_write_command(
    batch: Annotated[str | None, typer.Option("--batch", help="One batch (default: every batch turned off).")] = None,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Which batches' Stripe usage writes are decommissioned (their clean-up ran): the router sends them to
    Metronome only."""
    from billmig.adapters.ssm_feature_flags import SSMFeatureFlags
    from billmig.feature_flags import stripe_writes_off

    name = aws_target.stack_outputs(stack_name)["FeatureFlagsParameterName"]
    off = stripe_writes_off(SSMFeatureFlags(name, client=aws_target.client("ssm")).read())
    if batch is not None:
        state = f"decommissioned since {off[batch]}: Metronome only" if batch in off else "on (Stripe and Metronome)"
        console.print(f"batch {batch}: Stripe usage writes {state}", soft_wrap=True)
        return
    if not off:
        console.print("no batch has its Stripe usage writes decommissioned", soft_wrap=True)
    for batch_id, since in sorted(off.items()):
        console.print(f"batch {batch_id}: Stripe usage writes decommissioned since {since}: Metronome only")
