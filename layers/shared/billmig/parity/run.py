"""A parity run: which customers it checks, the check of one customer (its periods written to the ledger), and the
run's results document the report step starts from.

A run checks every customer of the parallel run (phase `parallel_run` or `held_back`, optionally one batch), and in a
named batch also those that never reached it: an active Stripe subscriber of the batch without a contract is itself
a parity failure (`no_contract`). Each customer's check runs once per parity run through the step machinery, so a
redriven execution does not check a customer twice, and a failure is recorded against the customer for the report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from billmig.metronome.storage import MigrationRun, RunStorage, run_key
from billmig.observability import metrics
from billmig.parity.comparison import ParityCustomer, check_customer
from billmig.parity.ledger import ParityLedger
from billmig.parity.ports import MetronomeParityReads, StripeParityReads
from billmig.parity.verdicts import PeriodParity
from billmig.progress import ProgressStore, SubjectProgress
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.usage.completeness import CompletenessRow, UsageTotals, month_bounds, rows_for_period
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.routing import CustomerRoute

PARALLEL_RUN = "parallel_run"
HELD_BACK = "held_back"
CHECKED_PHASES = frozenset({PARALLEL_RUN, HELD_BACK})
"""Customers still dual-writing: in their parallel run, or held back there by the gate."""


def parity_progress_run(parity_run_id: str) -> str:
    """The progress-store run a parity run's per-customer steps are recorded under (apart from the batches')."""
    return f"parity-run#{parity_run_id}"


def customers_key(parity_run_id: str) -> str:
    return f"parity/{parity_run_id}/customers.json"


class ParityFilters(BaseModel):
    """The execution's input: `{}` from the schedule (every batch, every period), or the CLI's filters."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(default=None, min_length=1)
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")  # YYYY-MM, a real month


class ParityRunRequest(BaseModel):
    parity_run_id: str = Field(min_length=1)
    filters: ParityFilters = Field(default_factory=ParityFilters)

    @property
    def run_id(self) -> str:
        return self.parity_run_id

    @property
    def subject(self) -> str:
        return self.filters.batch_id or "*"


class ParityCustomersResult(BaseModel):
    """The execution's state after the listing: what the Map reads and passes on (keys, never documents)."""

    parity_run_id: str
    batch_id: str | None
    period: str | None
    customers_key: str
    customers: int
    max_concurrency: int


class CheckParityRequest(BaseModel):
    parity_run_id: str
    batch_id: str
    stripe_customer_id: str
    period: str | None = None
    runner: str

    @property
    def run_id(self) -> str:
        return self.parity_run_id

    @property
    def subject(self) -> str:
        return self.stripe_customer_id


class CheckParityResult(BaseModel):
    parity_run_id: str
    batch_id: str
    stripe_customer_id: str
    outcome: str  # passed | outside tolerance | no period yet | already checked
    periods: int = 0
    closed_periods: int = 0
    within_tolerance: bool = True
    difference_cents: int = 0
    causes: list[str] = Field(default_factory=list)


class CustomerListing(Protocol):
    """Where the customers of the parallel run are found (the progress table)."""

    def all_in_run(self, run_id: str) -> list[SubjectProgress]: ...

    def in_phases(self, phases: frozenset[str]) -> list[tuple[str, str]]:
        """(batch id, Stripe customer id) of every subject whose phase is one of `phases`, in any batch."""
        ...


def parity_customers(
    request: ParityRunRequest, listing: CustomerListing, storage: RunStorage, *, max_concurrency: int
) -> ParityCustomersResult:
    """The run's customers, written to S3 for the distributed Map (`[{"batch_id", "stripe_customer_id"}]`)."""
    batch_id = request.filters.batch_id
    if batch_id is None:
        pairs = sorted(set(listing.in_phases(CHECKED_PHASES)))
    else:
        excluded = MigrationRun.model_validate(storage.read_json(run_key(batch_id))).excluded
        pairs = [
            (batch_id, p.subject)
            for p in listing.all_in_run(batch_id)
            if p.subject.startswith("cus_")
            and p.subject not in excluded
            and (p.phase in CHECKED_PHASES or p.phase is None)
        ]
    items = [{"batch_id": batch, "stripe_customer_id": customer} for batch, customer in pairs]
    key = customers_key(request.parity_run_id)
    storage.write_json(key, items)
    return ParityCustomersResult(
        parity_run_id=request.parity_run_id,
        batch_id=batch_id,
        period=request.filters.period,
        customers_key=key,
        customers=len(items),
        max_concurrency=max_concurrency,
    )


def check_parity(
    request: CheckParityRequest,
    storage: RunStorage,
    store: ProgressStore,
    ledger: ParityLedger,
    stripe: StripeParityReads,
    metronome: MetronomeParityReads,
    totals: UsageTotals,
    router: UsageRouterConfig,
    now: Callable[[], datetime],
) -> CheckParityResult:
    """Compare one customer's periods and record each in the ledger (newest run wins); vendors are only read."""
    config = MigrationRun.model_validate(storage.read_json(run_key(request.batch_id))).config
    progress = store.get(request.batch_id, request.stripe_customer_id)
    customer = ParityCustomer(
        batch_id=request.batch_id,
        stripe_customer_id=request.stripe_customer_id,
        ingest_alias=progress.ingest_alias if progress else None,
        dual_write_from=(progress.dual_write_from if progress else None) or config.parallel_run_start,
        cutover_at=(progress.cutover_at if progress else None) or config.cutover_at,
    )
    found: list[PeriodParity] = []

    def body(_: RunningStep) -> StepOutcome:
        instant = now()
        alias = customer.ingest_alias

        def completeness(start: datetime, end: datetime) -> list[CompletenessRow]:
            if alias is None:
                return []
            route = CustomerRoute(
                alias, customer.stripe_customer_id, PARALLEL_RUN, customer.dual_write_from, customer.cutover_at
            )
            return rows_for_period(route, router, totals, (start, end), f"{start:%Y-%m-%d}", now=instant)

        found.extend(
            check_customer(
                customer,
                config,
                stripe,
                metronome,
                completeness,
                parity_run_id=request.parity_run_id,
                now=instant,
                late_event_window=timedelta(hours=router.late_event_window_hours),
                period_filter=month_bounds(request.period) if request.period else None,
            )
        )
        for record in found:
            ledger.record(record)
        failing = [r for r in found if not r.passed]
        outcome = "no period yet" if not found else "outside tolerance" if failing else "passed"
        return StepOutcome(outcome, detail=", ".join(sorted({d.cause.value for r in failing for d in r.differences})))

    done = run_once(
        store,
        StepKey(parity_progress_run(request.parity_run_id), request.stripe_customer_id, Step.PARITY_CHECK),
        request.runner,
        body,
    )
    if done.already_done:
        return CheckParityResult(
            parity_run_id=request.parity_run_id,
            batch_id=request.batch_id,
            stripe_customer_id=request.stripe_customer_id,
            outcome="already checked",
        )
    difference = sum(abs(r.difference_cents) for r in found)
    within = all(r.passed for r in found)
    metrics.add_metric(name="CustomersChecked", unit="Count", value=1)
    metrics.add_metric(name="CustomersWithinTolerance", unit="Count", value=1 if within else 0)
    metrics.add_metric(name="DifferenceCents", unit="Count", value=difference)
    return CheckParityResult(
        parity_run_id=request.parity_run_id,
        batch_id=request.batch_id,
        stripe_customer_id=request.stripe_customer_id,
        outcome=done.outcome,
        periods=len(found),
        closed_periods=sum(r.closed for r in found),
        within_tolerance=within,
        difference_cents=difference,
        causes=sorted({d.cause.value for r in found for d in r.differences}),
    )


class ParityReportRequest(BaseModel):
    parity_run_id: str
    batch_id: str | None = None
    period: str | None = None

    @property
    def run_id(self) -> str:
        return self.parity_run_id

    @property
    def subject(self) -> str:
        return "report"
