"""The Powertools Metrics a parity check emits (`CustomersChecked`, `CustomersWithinTolerance`, `DifferenceCents`),
read back as the EMF documents the step handler prints to stdout for CloudWatch Logs.

`check_parity` runs inside the project's own `step_handler` (as `functions/parity_check/app.py` wears it) against the
template's progress table, ledger and import bucket on the local stack; the vendors' invoices are served from memory
(the comparison itself is tested in tests/unit/test_parity_comparison.py, and on the emulators in the e2e suite)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.s3_import_storage import S3ImportStorage
from billmig.metronome.config import AutoRecharge
from billmig.metronome.ports import MetronomeContract, MetronomeCustomer, MetronomeInvoice, MetronomeInvoiceLine
from billmig.metronome.resolution import ResolvedConfig, ResolvedPrice
from billmig.metronome.storage import MigrationRun, run_key
from billmig.observability import METRICS_NAMESPACE, metrics, step_handler
from billmig.parity.ports import StripeParityReads, UsageProduct
from billmig.parity.run import CheckParityRequest, CheckParityResult, check_parity
from billmig.steps import Step
from billmig.stripe_source.views import (
    StripeCreditGrant,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripeItem,
    StripeSubscription,
)
from billmig.usage.mapping import MeterRule, UsageRouterConfig
from billmig_local.lambda_runtime import InvocationContext
from billmig_local.stack import LocalStack
from suite import REPO

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
NOW = MAR + timedelta(days=5)  # both periods closed: past the 48-hour late-event window
ROUTER = UsageRouterConfig.model_validate_json((REPO / "events" / "usage" / "router.json").read_text())
PARITY_METRICS = ("CustomersChecked", "CustomersWithinTolerance", "DifferenceCents")


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True)
class Customer:
    """A customer of the parallel run and its closed periods: (start, end, Stripe lines, Metronome's total)."""

    stripe_id: str
    alias: str
    periods: tuple[tuple[datetime, datetime, tuple[tuple[str, int, int], ...], int], ...]


class MemoryStripe:
    """The reads parity makes of Stripe, from memory: one subscription per customer, its paid cycle invoices."""

    def __init__(self, customers: list[Customer]) -> None:
        self._customers = {c.stripe_id: c for c in customers}

    def _subscription(self, customer: Customer) -> StripeSubscription:
        items = tuple(
            StripeItem(price, price.removeprefix("price_"), 0, "month", f"mtr_{price}", _ts(MAR), _ts(MAR))
            for price in ("price_api_calls", "price_premium_addon")
        )
        return StripeSubscription(f"sub_{customer.stripe_id}", "canceled", _ts(JAN), items, _ts(JAN))

    def customer(self, customer_id: str) -> StripeCustomer:
        customer = self._customers[customer_id]
        return StripeCustomer(
            customer_id, None, None, {"internal_customer_id": customer.alias}, None, (self._subscription(customer),)
        )

    def invoices(self, subscription_id: str) -> list[StripeInvoice]:
        customer = self._customers[subscription_id.removeprefix("sub_")]
        found = []
        for n, (start, end, lines, _) in enumerate(customer.periods):
            total = sum(cents for _, _, cents in lines)
            found.append(
                StripeInvoice(
                    id=f"in_{customer.stripe_id}_{n}",
                    subscription_id=subscription_id,
                    status="paid",
                    period_start=_ts(start),
                    period_end=_ts(end),
                    subtotal=total,
                    total=total,
                    credits_applied=0,
                    currency="usd",
                    lines=tuple(StripeInvoiceLine(p, q, c, _ts(start), _ts(end)) for p, q, c in lines),
                    billing_reason="subscription_cycle",
                )
            )
        return found[::-1]  # newest first, as Stripe lists them

    def invoice_preview(self, customer_id: str, subscription_id: str) -> StripeInvoice | None:
        return None

    def credit_grants(self, customer_id: str) -> list[StripeCreditGrant]:
        return []

    def credit_grants_of_transactions(self, customer_id: str) -> dict[str, str]:
        return {}


class MemoryMetronome:
    """Each customer's contract and finalized usage invoices: the API calls Stripe billed, at Metronome's total."""

    def __init__(self, customers: list[Customer]) -> None:
        self._customers = {f"m_{c.alias}": c for c in customers}

    def customer_by_alias(self, alias: str) -> MetronomeCustomer | None:
        return MetronomeCustomer(f"m_{alias}", alias, (alias,), None) if f"m_{alias}" in self._customers else None

    def contracts(self, customer_id: str) -> list[MetronomeContract]:
        return [MetronomeContract(f"contract_{customer_id}", customer_id, None, JAN, "rc_standard", {}, None)]

    def usage_invoices(self, customer_id: str) -> list[MetronomeInvoice]:
        found = []
        for n, (start, end, lines, total) in enumerate(self._customers[customer_id].periods):
            api = next(line for line in lines if line[0] == "price_api_calls")
            usage = MetronomeInvoiceLine("usage", "API calls", api[2], "prod_api", Decimal(api[1]))
            found.append(
                MetronomeInvoice(
                    f"inv_{customer_id}_{n}", "USAGE", "FINALIZED", start, end, total, None, None, (usage,)
                )
            )
        return found

    def usage_product(self, product_id: str) -> UsageProduct:
        return UsageProduct(product_id, "API calls", "bm_api")

    def rated_values(self, rate_card_id: str, product_id: str, at: datetime) -> list[dict[str, str]]:
        return [{}]

    def usage_by_group(
        self, customer_id: str, billable_metric_id: str, group_key: str, start: datetime, end: datetime
    ) -> dict[str, Decimal]:
        return {}


class SameUsageTotals:
    """The dual write complete: both vendors counted the same usage on every meter."""

    def stripe_total(self, stripe_customer_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal:
        return Decimal(1000)

    def metronome_total(self, internal_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal:
        return Decimal(1000)


def _config() -> ResolvedConfig:
    return ResolvedConfig(
        migration_id="billmig-metronome",
        rate_card_id="rc_standard",
        internal_id_metadata_key="internal_customer_id",
        commit_product_id="prod_commit",
        credit_product_id="prod_credit",
        prices=[ResolvedPrice(stripe_price="api_calls", product_id="prod_api")],  # premium_addon: unmapped
        parallel_run_start=JAN,
        cutover_at=datetime(2026, 6, 1, tzinfo=UTC),
        strategy="parallel",
        auto_recharge=AutoRecharge(threshold_amount=2000, recharge_to_amount=5000),
        concurrency=1,
    )


@dataclass
class Parity:
    rounding: str
    faulty: str
    invoke: Callable[[str], dict[str, Any]]
    emf: Callable[[], list[dict[str, Any]]]


@pytest.fixture()
def parity(local_stack: LocalStack, dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> Parity:
    batch = f"parity-metrics-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    customers = [
        # one cent of rounding on the invoice total, every line agreeing: within tolerance
        Customer(f"cus_round{tag}", f"round{tag}", ((FEB, MAR, (("price_api_calls", 1000, 2000),), 2001),)),
        # January: an unmapped $5.00 add-on (Metronome 500 cents short); February: Metronome 300 cents over
        Customer(
            f"cus_fault{tag}",
            f"fault{tag}",
            (
                (JAN, FEB, (("price_api_calls", 1000, 2000), ("price_premium_addon", 1, 500)), 2000),
                (FEB, MAR, (("price_api_calls", 1000, 2000),), 2300),
            ),
        ),
    ]
    storage = S3ImportStorage(local_stack.outputs["ImportBucketName"], client=local_stack.client("s3"))
    storage.write_json(run_key(batch), MigrationRun(batch_id=batch, config=_config()).model_dump(mode="json"))
    store = DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)
    ledger = DynamoDBParityLedger(local_stack.outputs["ProgressTableName"], client=dynamodb)
    for customer in customers:
        store.set_phase(
            batch, customer.stripe_id, "parallel_run", ingest_alias=customer.alias, dual_write_from=JAN,
            cutover_at=datetime(2026, 6, 1, tzinfo=UTC),
        )  # fmt: skip
    stripe, metronome = cast(StripeParityReads, MemoryStripe(customers)), MemoryMetronome(customers)

    @step_handler(CheckParityRequest, Step.PARITY_CHECK)
    def handler(request: CheckParityRequest) -> CheckParityResult:
        return check_parity(request, storage, store, ledger, stripe, metronome, SameUsageTotals(), ROUTER, lambda: NOW)

    def invoke(stripe_customer_id: str) -> dict[str, Any]:
        context = InvocationContext(
            function_name="billmig-parity-check", function_version="$LATEST",
            invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:billmig-parity-check",
            memory_limit_in_mb=512, aws_request_id=uuid.uuid4().hex, log_group_name="/aws/lambda/billmig-parity-check",
            log_stream_name="test",
        )  # fmt: skip
        event = {"parity_run_id": f"run-{tag}", "batch_id": batch, "stripe_customer_id": stripe_customer_id,
                 "runner": "test"}  # fmt: skip
        return handler(event, cast(Any, context))

    def emf() -> list[dict[str, Any]]:
        documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        return [d for d in documents if "_aws" in d]

    metrics.clear_metrics()  # nothing another test left unflushed in this process
    capsys.readouterr()
    return Parity(customers[0].stripe_id, customers[1].stripe_id, invoke, emf)


def _values(document: dict[str, Any]) -> dict[str, Any]:
    """Each metric's values in the EMF document (Powertools writes a list per metric, one value per add)."""
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {m["Name"]: document[m["Name"]] for m in directive["Metrics"]}


def _parity(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in _values(document).items() if name in PARITY_METRICS}


def test_each_customer_check_emits_checked_within_tolerance_and_cents_of_difference(parity: Parity) -> None:
    passed = parity.invoke(parity.rounding)
    (document,) = parity.emf()

    assert (passed["outcome"], passed["within_tolerance"], passed["difference_cents"]) == ("passed", True, 1)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert {d: document[d] for d in directive["Dimensions"][0]} == {"service": "billmig", "step": Step.PARITY_CHECK}
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert all(units[name] == "Count" for name in PARITY_METRICS)
    assert _parity(document) == {"CustomersChecked": [1], "CustomersWithinTolerance": [1], "DifferenceCents": [1]}

    failed = parity.invoke(parity.faulty)
    (document,) = parity.emf()

    assert (failed["outcome"], failed["periods"], failed["within_tolerance"]) == ("outside tolerance", 2, False)
    # the absolute differences summed: January Metronome 500 cents short, February 300 cents over (not -200 net)
    assert _parity(document) == {"CustomersChecked": [1], "CustomersWithinTolerance": [0], "DifferenceCents": [800]}
    assert failed["difference_cents"] == 800


def test_a_redriven_check_of_a_customer_already_checked_emits_no_parity_metrics(parity: Parity) -> None:
    parity.invoke(parity.faulty)
    (first,) = parity.emf()
    assert _parity(first)["CustomersChecked"] == [1]

    again = parity.invoke(parity.faulty)
    (document,) = parity.emf()

    assert again["outcome"] == "already checked"
    assert _parity(document) == {}  # a redriven Map iteration does not count the customer twice
    assert _values(document)["StepSucceeded"] == [1]
