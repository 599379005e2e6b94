"""The report step: a parity run's report from what the run recorded, written to S3 as JSON, CSV and HTML.

It reads the run's customer list (the Map's items), each customer's check step on the progress store (one query for
the run), the periods this run recorded in the ledger, the cutover gate's verdict as of now, and the customer's name
from its migration snapshot. A customer whose check failed or found no period to compare is listed as not checked,
and the run then says "completed with errors" with the counts. Reads only, then three idempotent puts.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pydantic import BaseModel

from billmig.errors import PermanentError
from billmig.metronome.storage import RunStorage, snapshot_key
from billmig.parity.ledger import ParityLedger, cutover_verdict
from billmig.parity.report import ParityReport, UncheckedCustomer, build_report, report_as_csv
from billmig.parity.report_page import report_as_html
from billmig.parity.run import ParityReportRequest, customers_key, parity_progress_run
from billmig.parity.verdicts import GateVerdict, PeriodParity
from billmig.progress import ProgressStore, StepRecord, StepStatus
from billmig.steps import Step

READERS = 16
"""Customers read at once: each is a few small DynamoDB and S3 reads, so a 1,000-customer run is bound by latency."""

NO_PERIOD = "no billing period to compare yet"


def report_keys(parity_run_id: str) -> tuple[str, str, str]:
    prefix = f"parity/{parity_run_id}/report"
    return f"{prefix}.json", f"{prefix}.csv", f"{prefix}.html"


class ParityReportWritten(BaseModel):
    """What the state machine gets back: the status with its counts and where the three files are, not the rows."""

    parity_run_id: str
    status: str
    status_detail: str
    json_key: str
    csv_key: str
    html_key: str
    counts: dict[str, int]


class _CustomerReading(BaseModel):
    periods: list[PeriodParity] = []
    unchecked: UncheckedCustomer | None = None
    verdict: GateVerdict | None = None
    name: str | None = None


def _failure(step: StepRecord | None) -> str:
    if step is None:
        return "the check never started"
    if step.last_error is not None:
        return f"{step.last_error.type}: {step.last_error.message}"
    return f"the check did not finish ({step.status.value})"


def _name(storage: RunStorage, batch_id: str, customer_id: str) -> str | None:
    """The Stripe customer's name from the migration's snapshot; none for a customer never snapshotted."""
    try:
        snapshot = storage.read_json(snapshot_key(batch_id, customer_id))
    except PermanentError:
        return None
    name = snapshot.get("customer", {}).get("name") if isinstance(snapshot, dict) else None
    return name if isinstance(name, str) and name else None


def collect_report(
    request: ParityReportRequest,
    storage: RunStorage,
    store: ProgressStore,
    ledger: ParityLedger,
    now: Callable[[], datetime],
) -> ParityReport:
    run_id = request.parity_run_id
    items = storage.read_json(customers_key(run_id))
    steps = {p.subject: p.steps.get(Step.PARITY_CHECK) for p in store.all_in_run(parity_progress_run(run_id))}
    decided_at = now()

    def read(item: dict[str, str]) -> _CustomerReading:
        customer, batch = item["stripe_customer_id"], item["batch_id"]
        step = steps.get(customer)
        if step is None or step.status is not StepStatus.SUCCEEDED:
            return _CustomerReading(unchecked=UncheckedCustomer(stripe_customer_id=customer, outcome="failed",
                                                                reason=_failure(step)))  # fmt: skip
        periods = [p for p in ledger.periods(customer) if p.parity_run_id == run_id]
        if not periods:
            return _CustomerReading(
                unchecked=UncheckedCustomer(stripe_customer_id=customer, outcome="skipped", reason=NO_PERIOD)
            )
        return _CustomerReading(
            periods=periods,
            verdict=cutover_verdict(ledger, customer, decided_at),
            name=_name(storage, batch, customer),
        )

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        readings = dict(zip((i["stripe_customer_id"] for i in items), pool.map(read, items), strict=True))
    return build_report(
        run_id,
        [p for r in readings.values() for p in r.periods],
        generated_at=decided_at,
        unchecked=[r.unchecked for r in readings.values() if r.unchecked],
        verdicts={c: r.verdict for c, r in readings.items() if r.verdict},
        names={c: r.name for c, r in readings.items() if r.name},
    )


def write_parity_report(
    request: ParityReportRequest,
    storage: RunStorage,
    store: ProgressStore,
    ledger: ParityLedger,
    now: Callable[[], datetime],
) -> ParityReportWritten:
    """The run's report at `parity/<run id>/report.{json,csv,html}` (rewritten whole when the step runs again)."""
    report = collect_report(request, storage, store, ledger, now)
    json_key, csv_key, html_key = report_keys(request.parity_run_id)
    storage.write_json(json_key, report.model_dump(mode="json"))
    storage.write_text(csv_key, report_as_csv(report), content_type="text/csv; charset=utf-8")
    storage.write_text(html_key, report_as_html(report), content_type="text/html; charset=utf-8")
    summary = report.summary
    return ParityReportWritten(
        parity_run_id=request.parity_run_id,
        status=report.status,
        status_detail=report.status_detail,
        json_key=json_key,
        csv_key=csv_key,
        html_key=html_key,
        counts={
            "customers_checked": summary.customers_checked,
            "within_tolerance": summary.customers_within_tolerance,
            "held_back": summary.customers_held_back,
            "failed": summary.customers_failed,
            "skipped": summary.customers_skipped,
            "differences": summary.differences,
            "cents_of_difference": summary.cents_of_difference,
        },
    )
