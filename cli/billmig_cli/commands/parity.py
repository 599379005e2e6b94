"""`billmig parity run|approve|status|report`: parity checks of the parallel run on demand, the gate's overrides,
and a run's report on this machine."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.money import format_cents
from billmig.parity.ledger import cutover_verdict
from billmig.parity.run import ParityFilters
from billmig.parity.run_report import report_keys
from billmig.parity.verdicts import Approval, PeriodParity
from pydantic import ValidationError
from rich.table import Table

from billmig_cli import aws_target, executions, parity_report
from billmig_cli.options import StackName, console

app = typer.Typer(help="Parity of the parallel run: Stripe's invoices against Metronome's, and the cutover gate.")

Batch = Annotated[str | None, typer.Option("--batch", help="Only this migration batch (default: every batch).")]
Period = Annotated[str | None, typer.Option("--period", help="YYYY-MM: only periods starting in this month.")]


def caller() -> str:
    """Who approves: the STS caller ARN on AWS, $USER on the local stack (whose STS answers for everyone)."""
    if aws_target.is_local():
        return os.environ.get("USER") or os.environ.get("USERNAME") or "local-operator"
    return str(aws_target.client("sts").get_caller_identity()["Arn"])


def _ledger(stack_name: str) -> DynamoDBParityLedger:
    outputs = aws_target.stack_outputs(stack_name)
    return DynamoDBParityLedger(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))


def start_run(filters: ParityFilters, *, stack_name: str, now: datetime) -> str:
    """Start one parity execution (named after the filters and the world clock's instant); its ARN."""
    outputs = aws_target.stack_outputs(stack_name)
    name = executions.execution_name("parity", filters.batch_id or "all", filters.period or "", f"{now:%Y%m%dT%H%M%S}")
    payload = filters.model_dump(exclude_none=True)
    return executions.start(aws_target.client("stepfunctions"), outputs["ParityStateMachineArn"], payload, name)


def read_report(execution_name: str, *, stack_name: str) -> dict[str, Any]:
    outputs = aws_target.stack_outputs(stack_name)
    json_key, _, _ = report_keys(execution_name)
    body = aws_target.client("s3").get_object(Bucket=outputs["ImportBucketName"], Key=json_key)
    report: dict[str, Any] = json.loads(body["Body"].read())
    return report


def _cents(value: int | None) -> str:
    return "-" if value is None else format_cents(value)


def print_results(report: dict[str, Any]) -> None:
    """Each customer's periods, then the customers not checked, from the run's report (`billmig.parity.report`)."""
    table = Table("customer", "batch", "period", "closed", "Stripe", "Metronome", "difference", "result", "causes")
    for customer in report["customers"]:
        for raw in customer["periods"]:
            period = PeriodParity.model_validate(raw)
            result = "[green]pass[/]" if period.passed else "[red]fail[/]"
            table.add_row(
                period.stripe_customer_id,
                period.batch_id,
                f"{period.period_start:%Y-%m-%d}..{period.period_end:%Y-%m-%d}",
                "yes" if period.closed else "open",
                _cents(period.stripe_total_cents),
                _cents(period.metronome_total_cents),
                _cents(period.difference_cents),
                result,
                ", ".join(sorted({d.cause.value for d in period.differences})),
            )
    for unchecked in report["unchecked"]:
        table.add_row(unchecked["stripe_customer_id"], "-", "-", "-", "-", "-", "-", unchecked["outcome"],
                      unchecked["reason"])  # fmt: skip
    console.print(table)
    print_summary(report)


def print_summary(report: dict[str, Any]) -> None:
    summary = report["summary"]
    console.print(
        f"{report['status_detail']}: {summary['customers_checked']} customers checked, "
        f"{summary['customers_within_tolerance']} within tolerance, {summary['customers_held_back']} held back, "
        f"{summary['customers_failed']} failed, {summary['customers_skipped']} skipped; "
        f"{summary['differences']} differences, {format_cents(summary['cents_of_difference'])} in all",
        soft_wrap=True,
    )


@app.command("run")
def run_command(
    batch: Batch = None,
    period: Period = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the run.")] = 900,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Start a parity run now, wait for it, and print each customer's periods; exit 1 if any failed or differs."""
    try:
        filters = ParityFilters(batch_id=batch, period=period)
    except ValidationError as exc:
        flags = {"batch_id": "--batch", "period": "--period"}
        problems = [f"{flags.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
        console.print("[red]" + "; ".join(problems) + "; nothing was started[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    arn = start_run(filters, stack_name=stack_name, now=aws_target.world_now())
    console.print(f"parity run {arn.rsplit(':', 1)[-1]} started", soft_wrap=True)
    description = executions.wait(aws_target.client("stepfunctions"), arn, timeout=timeout)
    if description["status"] != "SUCCEEDED":
        console.print(f"[red]parity run {description['status']}: {description.get('cause') or ''}[/]", soft_wrap=True)
        raise typer.Exit(1)
    report = read_report(arn.rsplit(":", 1)[-1], stack_name=stack_name)
    print_results(report)
    summary = report["summary"]
    if report["status"] != "completed" or summary["customers_within_tolerance"] < summary["customers_checked"]:
        raise typer.Exit(1)


@app.command("approve")
def approve_command(
    customer: Annotated[str, typer.Option("--customer", help="The Stripe customer id the gate should release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Record an audited override (who, when, why) that the cutover gate honours."""
    if not reason.strip():
        console.print("[red]--reason: give the reason for the audit trail; nothing was recorded[/]", soft_wrap=True)
        raise typer.Exit(2)
    approval = Approval(
        stripe_customer_id=customer, approved_by=caller(), approved_at=aws_target.world_now(), reason=reason
    )
    _ledger(stack_name).approve(approval)
    console.print(
        f"approved {customer} by {approval.approved_by} at {approval.approved_at.isoformat()}: {reason}",
        soft_wrap=True,
    )


@app.command("status")
def status_command(
    customer: Annotated[list[str], typer.Option("--customer", help="Stripe customer id (repeatable).")],
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """What the gate would decide now for each customer, from the ledger, with its latest periods."""
    ledger = _ledger(stack_name)
    now = aws_target.world_now()
    table = Table("customer", "gate", "reason", "periods checked")
    for stripe_id in customer:
        verdict = cutover_verdict(ledger, stripe_id, now)
        periods = ledger.periods(stripe_id)
        shown = ", ".join(f"{p.period_start:%Y-%m-%d}{'' if p.closed else ' (open)'}" for p in periods) or "none"
        gate = "[green]released[/]" if verdict.released else "[yellow]held back[/]"
        table.add_row(stripe_id, gate, verdict.reason, shown)
    console.print(table)


@app.command("report")
def report_command(
    run: Annotated[str | None, typer.Option("--run", help="The parity run id; the newest run by default.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where <run>.json, .csv and .html go.")] = Path("."),
    open_page: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
    stack_name: StackName = aws_target.DEFAULT_STACK,
) -> None:
    """Fetch a parity run's report (JSON, CSV, one self-contained HTML page), or build it from the ledger."""
    try:
        found = parity_report.fetch_report(run, out, stack_name=stack_name)
    except parity_report.NoParityRun as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(f"parity run {found.parity_run_id}: report {found.source}", soft_wrap=True)
    print_summary(found.document)
    console.print(f"report: {found.json_path}  {found.csv_path}  {found.html_path}", soft_wrap=True)
    if open_page and not parity_report.open_in_browser(found.html_path):
        console.print(f"no browser to open; the page is {found.html_path.resolve().as_uri()}", soft_wrap=True)
