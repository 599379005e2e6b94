"""`billmig parity run|approve|status`: parity checks of the parallel run on demand, and the gate's overrides."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

import typer
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.parity.ledger import cutover_verdict
from billmig.parity.run import ParityFilters, report_key
from billmig.parity.verdicts import Approval, PeriodParity
from pydantic import ValidationError
from rich.table import Table

from billmig_cli import aws_target, executions
from billmig_cli.options import StackName, console

app = typer.Typer(help="Parity of the parallel run: Stripe's invoices against Metronome's, and the cutover gate.")

Batch = Annotated[str | None, typer.Option("--batch", help="Only this migration batch (default: every batch).")]
Period = Annotated[str | None, typer.Option("--period", help="YYYY-MM: only periods starting in this month.")]


def _local() -> bool:
    current = aws_target.endpoint_url()
    return bool(current) and urlparse(current).hostname in {"127.0.0.1", "localhost", "::1"}


def world_now() -> datetime:
    """The world clock: the local stack's (its control plane) or, on AWS, this machine's."""
    if _local():
        with urllib.request.urlopen(f"{aws_target.endpoint_url()}/_billmig/clock", timeout=10) as response:  # noqa: S310 - loopback
            return datetime.fromisoformat(json.loads(response.read())["iso"].replace("Z", "+00:00"))
    return datetime.now(UTC)


def caller() -> str:
    """Who approves: the STS caller ARN on AWS, $USER on the local stack (whose STS answers for everyone)."""
    if _local():
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
    body = aws_target.client("s3").get_object(Bucket=outputs["ImportBucketName"], Key=report_key(execution_name))
    report: dict[str, Any] = json.loads(body["Body"].read())
    return report


def _cents(value: int | None) -> str:
    return "-" if value is None else f"{value / 100:,.2f}"


def print_results(report: dict[str, Any]) -> None:
    table = Table("customer", "batch", "period", "closed", "Stripe", "Metronome", "difference", "result", "causes")
    for customer in report["customers"]:
        if not customer["periods"]:
            error = customer.get("error") or {}
            detail = f"{error.get('type')}: {error.get('message')}" if error else "no period to compare yet"
            table.add_row(customer["stripe_customer_id"], customer["batch_id"], "-", "-", "-", "-", "-",
                          customer["status"], detail)  # fmt: skip
            continue
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
    console.print(table)
    counts = report["counts"]
    console.print(
        f"{report['status']}: {counts['customers']} customers, {counts['passed']} passed, "
        f"{counts['outside_tolerance']} outside tolerance, {counts['no_period_yet']} with no period yet, "
        f"{counts['failed']} failed",
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
    arn = start_run(filters, stack_name=stack_name, now=world_now())
    console.print(f"parity run {arn.rsplit(':', 1)[-1]} started", soft_wrap=True)
    description = executions.wait(aws_target.client("stepfunctions"), arn, timeout=timeout)
    if description["status"] != "SUCCEEDED":
        console.print(f"[red]parity run {description['status']}: {description.get('cause') or ''}[/]", soft_wrap=True)
        raise typer.Exit(1)
    report = read_report(arn.rsplit(":", 1)[-1], stack_name=stack_name)
    print_results(report)
    if report["status"] != "completed" or report["counts"]["outside_tolerance"]:
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
    approval = Approval(stripe_customer_id=customer, approved_by=caller(), approved_at=world_now(), reason=reason)
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
    now = world_now()
    table = Table("customer", "gate", "reason", "periods checked")
    for stripe_id in customer:
        verdict = cutover_verdict(ledger, stripe_id, now)
        periods = ledger.periods(stripe_id)
        shown = ", ".join(f"{p.period_start:%Y-%m-%d}{'' if p.closed else ' (open)'}" for p in periods) or "none"
        gate = "[green]released[/]" if verdict.released else "[yellow]held back[/]"
        table.add_row(stripe_id, gate, verdict.reason, shown)
    console.print(table)
