"""`make demo`: the whole local world from nothing, one batch through the state machine, and a report.

Three acts: the preflight (a batch with two broken records and a flaky dependency, waiting for its start time on the
world clock, then the daily canary fired by its schedule), the Stigg import, and the first part of the Metronome
migration (seed, plan, start 20 customers, what Metronome holds and the credits moved).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billmig_cli import executions
from billmig_cli.demo_metronome import run_metronome_act
from billmig_cli.demo_stigg import run_stigg_demo


def demo_batch(size: int) -> dict[str, Any]:
    customers: list[dict[str, Any]] = [
        {"stripe_customer_id": f"cus_Demo{n:05d}", "internal_customer_id": f"acct-{1000 + n}"} for n in range(size)
    ]
    customers[3] = {"stripe_customer_id": "cus_Demo00003"}  # no internal id: cannot become an ingest alias
    customers[7] = {"stripe_customer_id": "customer-7", "internal_customer_id": "acct-1007"}  # not a Stripe id
    return {"batch_id": "demo-batch-1", "customers": customers}


def run_demo(console: Console, *, customers: int, state_dir: Path) -> int:
    from billmig_local.lambda_bridge import LambdaFault
    from billmig_local.stack import LocalStack, StackSettings

    began = time.monotonic()
    shutil.rmtree(state_dir, ignore_errors=True)
    with LocalStack(StackSettings(state_dir=state_dir.resolve())) as stack:
        up_seconds = time.monotonic() - began
        console.rule("[bold]billmig demo[/]: the local world")
        console.print(
            f"local AWS {stack.endpoint}: stack [bold]{stack.settings.stack_name}[/] deployed from "
            f"template.yaml in {up_seconds:.1f} s"
        )
        for name, url in stack.endpoints().items():
            if name != "aws":
                console.print(f"  {name:<10} {url or '[dim]not built yet[/]'}")
        sfn = stack.client("stepfunctions")
        machine = stack.outputs["PreflightStateMachineArn"]

        batch = demo_batch(customers)
        start_at = stack.clock.now_datetime().replace(microsecond=0) + timedelta(hours=1)
        batch["not_before"] = start_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stack.bridge is not None
        stack.bridge.faults.append(LambdaFault(function="preflight", error="VendorUnavailable", times=3))

        console.rule(f"batch {batch['batch_id']}: {customers} customers, not before {batch['not_before']}")
        ran = time.monotonic()
        arn = executions.start(sfn, machine, batch, executions.execution_name("demo", batch["batch_id"]))
        console.print("execution waiting for its start time… moving the world clock 1 h")
        stack.move_clock(advance=3600)
        result = executions.wait(sfn, arn, timeout=300)
        batch_seconds = time.monotonic() - ran
        output = json.loads(result.get("output") or "{}")
        events = executions.history(sfn, arn)
        retried = sum(
            1
            for e in events
            if e["type"] == "LambdaFunctionFailed"
            and e["lambdaFunctionFailedEventDetails"].get("error") == "VendorUnavailable"
        )
        report = output.get("report", {})
        _print_report(console, report, result["status"], len(events), retried, batch_seconds)

        console.rule("the daily canary schedule")
        now = stack.clock.now_datetime()
        next_six = (now + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
        if now.hour < 6:
            next_six -= timedelta(days=1)
        moved = stack.move_clock(to=next_six.timestamp() + 1)
        canary_ok = False
        for firing in moved["fired"]:
            canary = executions.wait(sfn, firing["execution_arn"], timeout=120)
            canary_ok = canary["status"] == "SUCCEEDED"
            console.print(f"{firing['schedule']} fired at {firing['at']}: {canary['status']}")

        stigg_ok = run_stigg_demo(console, stack, state_dir.resolve() / "stigg-import")
        console.rule("Stripe to Metronome, part 1: plan, start, prepare and contract, the parallel run begins")
        metronome_ok = run_metronome_act(console, stack, customers=20)

    expected_failed = {"cus_Demo00003", "customer-7"}
    failed = {f["customer_id"] for f in report.get("failed", [])}
    ok = (
        result["status"] == "SUCCEEDED"
        and report.get("counts", {}).get("succeeded") == customers - 2
        and failed == expected_failed
        and retried == 3
        and canary_ok
        and stigg_ok
        and metronome_ok
    )
    console.rule("[bold green]demo passed[/]" if ok else "[bold red]demo did not go as expected[/]")
    console.print(
        f"total {time.monotonic() - began:.1f} s (stack up {up_seconds:.1f} s, batch {batch_seconds:.1f} s)"
        f"; world clock now {datetime.fromtimestamp(stack.clock.now(), UTC).isoformat()}"
    )
    return 0 if ok else 1


def _print_report(
    console: Console, report: dict[str, Any], status: str, events: int, retried: int, seconds: float
) -> None:
    console.print(
        f"execution [bold]{status}[/] in {seconds:.1f} s: {events} history events, "
        f"{retried} transient failures (VendorUnavailable) retried by Step Functions"
    )
    counts = Table("state", "customers", title="progress store, by state (status index)")
    for state, count in report.get("counts", {}).items():
        counts.add_row(state, str(count))
    console.print(counts)
    failed = Table("customer", "error", "why", title="caught and recorded, batch carried on")
    for item in report.get("failed", []):
        failed.add_row(item["customer_id"], item["error_type"] or "", item["error_message"] or "")
    console.print(failed)
