"""The billing engine: events -> metrics -> usage products -> rate card -> invoices, with commit/credit draw-down.

Invoices are computed from the stored facts whenever asked ("everything due up to clock.now()"). An open or
grace-period statement period is a DRAFT recomputed on every read; once its grace period is over it is FINALIZED
and frozen in the store together with the draw-downs it made, so later events never change it. Scheduled invoices
come from PREPAID commits' invoice schedules. Prepaid balance thresholds are evaluated on every catch-up.

Simplification: the rate in effect at a statement period's start prices the whole period (a rate starting mid-period
applies from the next one); rollover is not emulated, and POSTPAID commits neither draw down nor true up.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billmig_local.emulators.object_store import ObjectStore

from .drawdown import Segment, applies_to, priority_key, segments_of
from .rating import charge, rate_for
from .statement_periods import Period, statement_periods
from .stripe_delivery import StripeGateway
from .usage_aggregation import aggregate_by_group, metric_matches
from .wire_format import (
    FAR_FUTURE,
    USD_CENTS,
    cents,
    derived_id,
    format_time,
    json_number,
    new_id,
    parse_time,
    to_decimal,
)

GRACE_SECONDS = 24 * 3600
"""Metronome's default invoice finalization grace period."""


@dataclass
class CustomerBilling:
    """Everything billed to one customer as of `now`."""

    invoices: list[dict[str, Any]] = field(default_factory=list)
    drawn: dict[str, int] = field(default_factory=dict)  # segment id -> cents drawn
    deductions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # segment id -> ledger entries
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Line:
    product: dict[str, Any]
    values: dict[str, str | None]
    rate: dict[str, Any]
    quantity: Decimal
    window_charges: list[int]
    left: list[int]


class BillingEngine:
    def __init__(self, store: ObjectStore, now: Callable[[], float], stripe: StripeGateway | None = None) -> None:
        self.store = store
        self.now = now
        self.stripe = stripe or StripeGateway()
        self._undelivered = True  # look for pending Stripe deliveries on the next catch-up
        self._events_by_customer: dict[str, list[dict[str, Any]]] = {}
        self._next_due = 0.0
        self._dirty: set[str] = set()  # customers with new usage: a threshold may have tripped
        self._changed: set[str] = set()  # customers whose contracts, commits or status changed
        self._catching_up = threading.Lock()
        self.aliases: dict[str, str] = {}  # ingest alias -> customer id
        for customer in store.all("customer"):
            for alias in customer.get("ingest_aliases", []):
                self.aliases[alias] = customer["id"]
        for event in store.all("event"):
            if "_customer_id" not in event:  # stored before matching happened at ingest: match it now, once
                event["_customer_id"] = self.resolve_customer_id(event["customer_id"])
                store.put("event", event["transaction_id"], event)
            if event["_customer_id"]:
                self._events_by_customer.setdefault(event["_customer_id"], []).append(event)

    # ------------------------------------------------------------------------------------------------- events
    def add_event(self, event: dict[str, Any]) -> None:
        """Store an ingested event, matched to a customer now (by id or by the ingest aliases of this moment):
        Metronome matches on ingestion, so a later alias change does not move or adopt events."""
        with self.store.lock:
            event["_customer_id"] = self.resolve_customer_id(event["customer_id"])
            self.store.put("event", event["transaction_id"], event)
            if event["_customer_id"]:
                self._events_by_customer.setdefault(event["_customer_id"], []).append(event)
                self._dirty.add(event["_customer_id"])

    def customer_events(self, customer: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(self._events_by_customer.get(customer["id"], []))
        found.sort(key=lambda e: (e["_ts"], e["transaction_id"]))
        return found

    def mark_changed(self, customer_id: str | None = None) -> None:
        """Contracts, commits or statuses changed: re-evaluate on the next request, just that customer when it is
        named (a full pass per change made a batch of N customers cost N^2), everyone otherwise."""
        with self.store.lock:
            if customer_id:
                self._changed.add(customer_id)
            else:
                self._next_due = 0.0

    # ------------------------------------------------------------------------------------------------- sources
    def sources_for(self, customer_id: str) -> list[dict[str, Any]]:
        """Commits and credits (contract-level and customer-level) that can pay this customer's invoices."""
        sources: list[dict[str, Any]] = []
        for contract in self.contracts_of(customer_id):
            for item in [*contract.get("commits", []), *contract.get("credits", [])]:
                sources.append({**item, "_contract_id": contract["id"]})
        for item in self.store.where("customer_commit", "_customer_id", customer_id):
            sources.append({**item, "_contract_id": None})
        return sources

    def contracts_of(self, customer_id: str) -> list[dict[str, Any]]:
        return [c for c in self.store.where("contract", "customer_id", customer_id) if not c.get("archived_at")]

    # ------------------------------------------------------------------------------------------------- billing
    def bill_customer(
        self, customer_id: str, *, preview: list[dict[str, Any]] | None = None, replace: bool = False
    ) -> CustomerBilling:
        """All invoices and draw-downs for a customer at the clock's now (persists newly finalized invoices).

        With `preview` events (added to the stored ones, or instead of them with `replace`) nothing is persisted
        and no scheduled invoices are made: what `previewEvents` shows.
        """
        with self.store.lock:
            now = self.now()
            customer = self.store.get("customer", customer_id)
            billing = CustomerBilling(sources=self.sources_for(customer_id))
            if customer is None:
                return billing
            segments = [seg for source in billing.sources for seg in segments_of(source)]
            events = self.customer_events(customer)
            if preview is not None:
                events = sorted(
                    preview if replace else [*events, *preview], key=lambda e: (e["_ts"], e["transaction_id"])
                )
            work: list[tuple[float, int, dict[str, Any], Period]] = []
            for contract in self.contracts_of(customer_id):
                schedule = contract.get("usage_statement_schedule") or {}
                generation = schedule.get("invoice_generation_starting_at")
                periods = statement_periods(
                    schedule,
                    contract["_starting_ts"],
                    contract.get("_ending_ts"),
                    parse_time(generation) if generation else None,
                    now,
                )
                work.extend((p.start, contract["_seq"], contract, p) for p in periods)
            work.sort(key=lambda w: (w[0], w[1]))
            for _, _, contract, period in work:
                invoice_id = derived_id("usage", contract["id"], repr(period.start))
                stored = self.store.get("invoice", invoice_id)
                if stored is not None:
                    for draw in stored.get("_draws", []):
                        self._record_draw(billing, draw, stored)
                    billing.invoices.append(stored)
                    continue
                invoice = self._usage_invoice(invoice_id, customer, contract, period, events, segments, billing, now)
                billing.invoices.append(invoice)
                if invoice["status"] == "FINALIZED" and preview is None:
                    self._finalize(invoice, customer, contract)
            if preview is None:
                for source in billing.sources:
                    billing.invoices.extend(self._scheduled_invoices(customer, source, now))
            billing.invoices.sort(key=lambda inv: (inv.get("start_timestamp") or inv.get("issued_at") or "", inv["id"]))
            return billing

    def _record_draw(self, billing: CustomerBilling, draw: dict[str, Any], invoice: dict[str, Any]) -> None:
        seg_id = draw["segment_id"]
        billing.drawn[seg_id] = billing.drawn.get(seg_id, 0) + draw["amount"]
        billing.deductions.setdefault(seg_id, []).append(
            {
                "invoice_id": invoice["id"],
                "amount": -draw["amount"],
                "timestamp": invoice["start_timestamp"],
                "contract_id": invoice.get("contract_id"),
            }
        )

    def _rates_of(self, rate_card_id: str | None) -> list[dict[str, Any]]:
        if not rate_card_id:
            return []
        return self.store.where("rate", "_rate_card_id", rate_card_id)

    def _usage_invoice(
        self,
        invoice_id: str,
        customer: dict[str, Any],
        contract: dict[str, Any],
        period: Period,
        events: list[dict[str, Any]],
        segments: list[Segment],
        billing: CustomerBilling,
        now: float,
    ) -> dict[str, Any]:
        in_period = [e for e in events if period.start <= e["_ts"] < period.end]
        usable = [
            s
            for s in segments
            if s.source["_contract_id"] in (None, contract["id"])
            and (
                s.source["_contract_id"] is not None
                or not s.source.get("applicable_contract_ids")
                or contract["id"] in s.source["applicable_contract_ids"]
            )
            and s.kind != "POSTPAID"
            and s.start < period.end
            and s.end > period.start
        ]
        cuts = sorted(
            {period.start, period.end} | {t for s in usable for t in (s.start, s.end) if period.start < t < period.end}
        )
        windows = list(itertools.pairwise(cuts))
        rates = self._rates_of(contract.get("rate_card_id"))
        lines: list[_Line] = []
        product_ids = list(dict.fromkeys(r["product_id"] for r in rates))
        for product_id in product_ids:
            product = self.store.get("product", product_id)
            if product is None or product["type"] != "USAGE":
                continue
            current = product["current"]
            metric = self.store.get("billable_metric", current.get("billable_metric_id") or "")
            if metric is None:
                continue
            keys = list(current.get("pricing_group_key") or [])
            matching = [e for e in in_period if metric_matches(metric, e)]
            totals = aggregate_by_group(metric, matching, keys)
            for values_tuple, quantity in totals.items():
                values = dict(zip(keys, values_tuple, strict=True))
                rate = rate_for(rates, product_id, values or None, period.start)
                if rate is None:
                    continue  # no rate at these pricing-group values: usage without a charge
                cumulative = []
                for _, w_end in windows:
                    upto = [e for e in matching if e["_ts"] < w_end]
                    q = aggregate_by_group(metric, upto, keys).get(values_tuple, Decimal(0))
                    cumulative.append(cents(charge(rate["rate"], q)))
                charges = [c - p for c, p in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
                lines.append(_Line(product, values, rate, quantity, charges, list(charges)))
        draws: dict[str, int] = {}
        for index, (w_start, w_end) in enumerate(windows):
            active = sorted((s for s in usable if s.start <= w_start and s.end >= w_end), key=priority_key)
            for seg in active:
                for line in lines:
                    available = seg.amount - billing.drawn.get(seg.segment_id, 0)
                    if available <= 0:
                        break
                    if line.left[index] <= 0 or not applies_to(seg.source, line.product, line.values):
                        continue
                    take = min(available, line.left[index])
                    line.left[index] -= take
                    billing.drawn[seg.segment_id] = billing.drawn.get(seg.segment_id, 0) + take
                    draws[seg.segment_id] = draws.get(seg.segment_id, 0) + take
        status = "FINALIZED" if period.end + GRACE_SECONDS <= now else "DRAFT"
        line_items = [self._usage_line(line, period) for line in lines]
        by_segment = {s.segment_id: s for s in usable}
        for seg_id, amount in draws.items():
            seg = by_segment[seg_id]
            line_items.append(self._applied_line(seg, amount, period))
        invoice = {
            "id": invoice_id,
            "customer_id": customer["id"],
            "contract_id": contract["id"],
            "credit_type": dict(USD_CENTS),
            "type": "USAGE",
            "status": status,
            "start_timestamp": format_time(period.start),
            "end_timestamp": format_time(period.end),
            "issued_at": format_time(period.end),
            "created_at": format_time(period.start),
            "line_items": line_items,
            "total": sum(item["total"] for item in line_items),
            "billable_status": self.billable_status_at(customer, period.start),
            "_draws": [{"segment_id": k, "amount": v} for k, v in draws.items()],
        }
        for draw in invoice["_draws"]:
            billing.deductions.setdefault(draw["segment_id"], []).append(
                {
                    "invoice_id": invoice_id,
                    "amount": -draw["amount"],
                    "timestamp": invoice["start_timestamp"],
                    "contract_id": contract["id"],
                }
            )
        return invoice

    @staticmethod
    def _usage_line(line: _Line, period: Period) -> dict[str, Any]:
        item: dict[str, Any] = {
            "name": line.product["current"]["name"],
            "type": "usage",
            "credit_type": dict(USD_CENTS),
            "quantity": json_number(line.quantity),
            "total": sum(line.window_charges),
            "product_id": line.product["id"],
            "product_type": "USAGE",
            "starting_at": format_time(period.start),
            "ending_before": format_time(period.end),
            "list_price": {k: v for k, v in line.rate["rate"].items() if not k.startswith("_")},
        }
        if line.rate["rate"].get("rate_type") == "FLAT":
            item["unit_price"] = line.rate["rate"].get("price", 0)
        if line.values:
            item["pricing_group_values"] = {k: v for k, v in line.values.items() if v is not None}
        return item

    @staticmethod
    def _applied_line(seg: Segment, amount: int, period: Period) -> dict[str, Any]:
        source = seg.source
        kind = "CREDIT" if source["type"] == "CREDIT" else source["type"]
        return {
            "name": source.get("name") or source["product"]["name"],
            "type": "credit" if kind == "CREDIT" else "commit",
            "credit_type": dict(USD_CENTS),
            "quantity": 1,
            "total": -amount,
            "product_id": source["product"]["id"],
            "commit_id": source["id"],
            "commit_segment_id": seg.segment_id,
            "commit_type": kind,
            "applied_commit_or_credit": {"id": source["id"], "type": kind},
            "starting_at": format_time(period.start),
            "ending_before": format_time(period.end),
        }

    def _scheduled_invoices(self, customer: dict[str, Any], source: dict[str, Any], now: float) -> list[dict[str, Any]]:
        schedule = source.get("invoice_schedule") or {}
        if source["type"] != "PREPAID" or schedule.get("do_not_invoice") or not schedule.get("schedule_items"):
            return []
        invoices = []
        for item in schedule["schedule_items"]:
            issued = parse_time(item["timestamp"])
            amount = cents(to_decimal(item.get("amount", 0)))
            invoice_id = derived_id("scheduled", item["id"])
            status = "FINALIZED" if issued <= now else "DRAFT"
            invoice = {
                "id": invoice_id,
                "customer_id": customer["id"],
                "credit_type": dict(USD_CENTS),
                "type": "SCHEDULED",
                "status": status,
                "issued_at": format_time(issued),
                "created_at": source.get("created_at") or format_time(issued),
                "line_items": [
                    {
                        "name": source.get("name") or source["product"]["name"],
                        "type": "scheduled",
                        "credit_type": dict(USD_CENTS),
                        "quantity": json_number(to_decimal(item.get("quantity", 1))),
                        "unit_price": item.get("unit_price", item.get("amount", 0)),
                        "total": amount,
                        "product_id": source["product"]["id"],
                        "commit_id": source["id"],
                        "commit_type": "PREPAID",
                    }
                ],
                "total": amount,
                "billable_status": self.billable_status_at(customer, issued),
            }
            if source.get("_contract_id"):
                invoice["contract_id"] = source["_contract_id"]
            if source.get("_gate_delivery"):  # paid through the payment gate: that Stripe invoice is this one
                invoice["external_invoice"] = self._external_invoice(source["_gate_delivery"], invoice["issued_at"])
            elif status == "FINALIZED":
                invoice["external_invoice"] = self._delivery(invoice, customer, source.get("_contract_id"))
            invoices.append(invoice)
        return invoices

    # ------------------------------------------------------------------------------------------------- status
    @staticmethod
    def billable_status_at(customer: dict[str, Any], instant: float) -> str:
        status = customer.get("_initial_billable_status", "billable")
        for change in customer.get("_billable_history", []):
            if change["_ts"] <= instant:
                status = change["value"]
        return str(status)

    def last_finalized_end(self, customer_id: str) -> float | None:
        ends = [
            parse_time(inv["end_timestamp"])
            for inv in self.store.where("invoice", "customer_id", customer_id)
            if inv["status"] == "FINALIZED"
        ]
        return max(ends) if ends else None

    # ------------------------------------------------------------------------------------------------- delivery
    def _stripe_configuration(self, customer: dict[str, Any], contract_id: str | None) -> dict[str, Any] | None:
        contract = self.store.get("contract", contract_id) if contract_id else None
        wanted = (contract or {}).get("_billing_provider_configuration_id")
        configs = self.store.where("billing_provider_configuration", "customer_id", customer["id"])
        if wanted:  # an archived configuration stops delivery at once
            return next((c for c in configs if c["id"] == wanted and not c.get("archived_at")), None)
        return next((c for c in configs if c["billing_provider"] == "stripe" and not c.get("archived_at")), None)

    def connect_stripe(self, url: str | None) -> None:
        """Deliver to the Stripe emulator at `url` from now on (None: only record deliveries)."""
        with self.store.lock:
            self.stripe.connect(url)
            self._undelivered = True
            self._next_due = 0.0

    def _delivery(self, invoice: dict[str, Any], customer: dict[str, Any], contract_id: str | None) -> Any:
        """Billable finalized invoices go to the customer's billing provider; unbillable ones never do."""
        if invoice["billable_status"] != "billable":
            return None
        config = self._stripe_configuration(customer, contract_id)
        if config is None:
            return None
        delivery = self.store.get("stripe_delivery", invoice["id"])
        if delivery is None:
            settings = config.get("configuration") or {}
            delivery = {
                "invoice_id": invoice["id"],
                "customer_id": customer["id"],
                "stripe_customer_id": settings.get("stripe_customer_id"),
                "collection_method": settings.get("stripe_collection_method") or "charge_automatically",
                "total": invoice["total"],
                "delivered_at": format_time(self.now()),
                "status": "pending" if self.stripe.connected else "recorded",
                "stripe_invoice_id": None,
                "error": None,
                "_lines": [(str(li.get("name") or "Metronome"), int(li["total"])) for li in invoice["line_items"]],
                "_issued_at": invoice["issued_at"],
            }
            self.store.put("stripe_delivery", invoice["id"], delivery)
            self._undelivered = True
        return self._external_invoice(delivery, invoice["issued_at"])

    @staticmethod
    def _external_invoice(delivery: dict[str, Any], issued_at: str) -> dict[str, Any]:
        status = {"pending": "QUEUED", "open": "FINALIZED", "paid": "PAID", "failed": "INVALID_REQUEST_ERROR"}
        stripe_id = delivery.get("stripe_invoice_id")
        return {
            "billing_provider_type": "stripe",
            "invoice_id": stripe_id or "in_emu_" + delivery["invoice_id"].replace("-", "")[:24],
            "issued_at_timestamp": issued_at,
            "external_status": status.get(delivery.get("status") or "", "FINALIZED"),
        }

    def deliver_pending(self) -> None:
        """Send recorded deliveries to the Stripe emulator (when connected); a transient failure waits for the
        next catch-up, a permanent one is kept with its error."""
        if not self.stripe.connected or not self._undelivered:
            return
        with self.store.lock:
            self._undelivered = False
            for recorded in self.store.all("stripe_delivery"):
                if recorded.get("status") not in ("pending", "recorded"):
                    continue
                delivery = dict(recorded)
                outcome = self.stripe.invoice(
                    key=f"metronome-delivery:{delivery['invoice_id']}",
                    stripe_customer_id=str(delivery["stripe_customer_id"]),
                    collection_method=delivery.get("collection_method") or "charge_automatically",
                    lines=[(name, amount) for name, amount in delivery.get("_lines", []) if amount],
                    metadata={"metronome_id": delivery["invoice_id"], "metronome_customer_id": delivery["customer_id"]},
                )
                if outcome.status == "retry":
                    self._undelivered = True
                    continue
                delivery = {
                    **delivery,
                    "status": outcome.status,
                    "stripe_invoice_id": outcome.stripe_invoice_id,
                    "error": outcome.error,
                }
                self.store.put("stripe_delivery", delivery["invoice_id"], delivery)
                stored = self.store.get("invoice", delivery["invoice_id"])
                if stored is not None:
                    external = self._external_invoice(delivery, stored["issued_at"])
                    self.store.put("invoice", stored["id"], {**stored, "external_invoice": external})

    def _finalize(self, invoice: dict[str, Any], customer: dict[str, Any], contract: dict[str, Any]) -> None:
        invoice["external_invoice"] = self._delivery(invoice, customer, contract["id"])
        self.store.put("invoice", invoice["id"], invoice)

    # ------------------------------------------------------------------------------------------------- balances
    def balance_of(self, source: dict[str, Any], billing: CustomerBilling, at: float) -> int:
        total = 0
        for seg in segments_of(source):
            if seg.start <= at < seg.end:
                total += seg.amount - billing.drawn.get(seg.segment_id, 0)
        return total

    def ledger_of(self, source: dict[str, Any], billing: CustomerBilling, at: float) -> list[dict[str, Any]]:
        prefix = "CREDIT" if source["type"] == "CREDIT" else f"{source['type']}_COMMIT"
        entries: list[dict[str, Any]] = []
        for seg in segments_of(source):
            if seg.start > at:
                continue
            entries.append(
                {
                    "type": f"{prefix}_SEGMENT_START",
                    "timestamp": format_time(seg.start),
                    "amount": seg.amount,
                    "segment_id": seg.segment_id,
                }
            )
            for deduction in billing.deductions.get(seg.segment_id, []):
                entry = {
                    "type": f"{prefix}_AUTOMATED_INVOICE_DEDUCTION",
                    "timestamp": deduction["timestamp"],
                    "amount": deduction["amount"],
                    "segment_id": seg.segment_id,
                    "invoice_id": deduction["invoice_id"],
                }
                if deduction.get("contract_id"):
                    entry["contract_id"] = deduction["contract_id"]
                entries.append(entry)
            remaining = seg.amount - billing.drawn.get(seg.segment_id, 0)
            if seg.end <= at and remaining > 0:
                entries.append(
                    {
                        "type": f"{prefix}_EXPIRATION",
                        "timestamp": format_time(seg.end),
                        "amount": -remaining,
                        "segment_id": seg.segment_id,
                    }
                )
        return entries

    # ------------------------------------------------------------------------------------------------- catch-up
    def resolve_customer_id(self, ref: str) -> str | None:
        if self.store.get("customer", ref) is not None:
            return ref
        return self.aliases.get(ref)

    def catch_up_if_due(self) -> None:
        """Cheap on most requests: a full pass only when something falls due or a threshold may have tripped."""
        if self.now() >= self._next_due:
            self.catch_up()
            return
        self.deliver_pending()
        if not self._dirty and not self._changed:
            return
        with self.store.lock:
            dirty, self._dirty = self._dirty, set()
            changed, self._changed = self._changed, set()
            for ref in dirty - changed:
                customer_id = self.resolve_customer_id(ref)
                if customer_id is not None:
                    self.recharge_if_needed(customer_id)
            for customer_id in changed:
                if self.contracts_of(customer_id) or self.store.where("customer_commit", "_customer_id", customer_id):
                    self._next_due = min(self._next_due, self._catch_up_customer(customer_id))
                    self._undelivered = True
        self.deliver_pending()

    def catch_up(self) -> None:
        """Finalize what is due, record deliveries and run threshold recharges, for every customer with a contract."""
        if not self._catching_up.acquire(blocking=False):
            return  # another thread is already doing it
        try:
            with self.store.lock:
                self._dirty.clear()
                self._changed.clear()
                customer_ids = list(dict.fromkeys(c["customer_id"] for c in self.store.all("contract")))
                customer_ids += list(
                    dict.fromkeys(
                        c["_customer_id"]
                        for c in self.store.all("customer_commit")
                        if not self.store.where("contract", "customer_id", c["_customer_id"])
                    )
                )
                next_due = float("inf")
                for customer_id in customer_ids:
                    next_due = min(next_due, self._catch_up_customer(customer_id))
                self._next_due = next_due
                self._undelivered = True
            self.deliver_pending()
        finally:
            self._catching_up.release()

    def _catch_up_customer(self, customer_id: str) -> float:
        """One customer's recharges and finalized invoices as of now; returns when it next needs a look."""
        self.recharge_if_needed(customer_id)
        billing = self.bill_customer(customer_id)
        next_due = float("inf")
        for invoice in billing.invoices:
            if invoice["status"] == "DRAFT":
                end = invoice.get("end_timestamp")
                due = parse_time(end) + GRACE_SECONDS if end else parse_time(invoice["issued_at"])
                next_due = min(next_due, due)
        for source in billing.sources:
            for seg in segments_of(source):
                if seg.end > self.now():
                    next_due = min(next_due, seg.end)
        # contract periods that have not begun yet start a new draft; look again at the next day boundary
        return min(next_due, self.now() + 3600)

    def recharge_if_needed(self, customer_id: str) -> None:
        """Prepaid balance thresholds: top the balance up to `recharge_to_amount` when it falls below threshold.

        Runs whatever the customer's billable status, as Metronome's does.
        """
        for _ in range(3):
            contracts = [
                c
                for c in self.contracts_of(customer_id)
                if (c.get("prepaid_balance_threshold_configuration") or {}).get("is_enabled")
            ]
            if not contracts:
                return
            billing = self.bill_customer(customer_id)
            now = self.now()
            recharged = False
            for contract in contracts:
                config = contract["prepaid_balance_threshold_configuration"]
                balance = sum(
                    self.balance_of(s, billing, now)
                    for s in billing.sources
                    if s["type"] in ("PREPAID", "CREDIT") and s["_contract_id"] in (None, contract["id"])
                )
                if balance >= to_decimal(config["threshold_amount"]):
                    continue
                amount = cents(to_decimal(config["recharge_to_amount"])) - balance
                if amount <= 0:
                    continue
                self._add_recharge_commit(contract, config, amount, now)
                recharged = True
            if not recharged:
                return

    def _charge_through_gate(
        self, contract: dict[str, Any], config: dict[str, Any], stripe_config: dict[str, Any] | None, amount: int
    ) -> dict[str, Any] | None:
        """Collect a recharge through the STRIPE gate (payment_type INVOICE): an invoice of the Stripe customer,
        finalized and charged at once. None when Stripe could not be reached (try again later)."""
        if stripe_config is None:
            return {"status": "failed", "error": "the contract has no Stripe billing provider configuration"}
        settings = stripe_config.get("configuration") or {}
        delivery: dict[str, Any] = {
            "invoice_id": f"recharge:{contract['id']}:{len(contract.get('commits', []))}",
            "stripe_customer_id": settings.get("stripe_customer_id"),
            "status": "paid",
            "stripe_invoice_id": None,
            "error": None,
        }
        if not self.stripe.connected:
            return delivery  # no Stripe emulator: the payment is taken as collected
        outcome = self.stripe.invoice(
            key=f"metronome-recharge:{contract['id']}:{config.get('_revision', 0)}:{len(contract.get('commits', []))}",
            stripe_customer_id=str(settings.get("stripe_customer_id")),
            collection_method="charge_automatically",
            lines=[(str((config.get("commit") or {}).get("name") or "Prepaid balance recharge"), amount)],
            metadata={"metronome_contract_id": contract["id"], "metronome_customer_id": contract["customer_id"]},
        )
        if outcome.status == "retry":
            return None
        return {**delivery, "status": outcome.status, "stripe_invoice_id": outcome.stripe_invoice_id,
                "error": outcome.error if outcome.status != "open" else "the Stripe invoice was not paid"}  # fmt: skip

    def _add_recharge_commit(self, contract: dict[str, Any], config: dict[str, Any], amount: int, now: float) -> None:
        gate = (config.get("payment_gate_config") or {}).get("payment_gate_type", "NONE").upper()
        customer = self.store.get("customer", contract["customer_id"]) or {"id": contract["customer_id"]}
        gate_delivery: dict[str, Any] | None = None
        if gate == "STRIPE":
            stripe_config = self._stripe_configuration(customer, contract["id"])
            gate_delivery = self._charge_through_gate(contract, config, stripe_config, amount)
            if gate_delivery is None:
                return  # a transient Stripe failure: evaluated again on the next catch-up
            if gate_delivery["status"] != "paid":
                # the gated payment failed: Metronome turns the threshold off and adds nothing
                config["is_enabled"] = False
                config["_last_payment_error"] = gate_delivery.get("error") or "payment failed"
                self.store.put("contract", contract["id"], contract)
                return
        commit_spec = config.get("commit") or {}
        product = self.store.get("product", commit_spec.get("product_id", "")) or {
            "id": commit_spec.get("product_id"),
            "current": {"name": "Prepaid balance recharge"},
        }
        start = format_time(now)
        commit = {
            "id": new_id(self.store, "commit"),
            "type": "PREPAID",
            "name": commit_spec.get("name") or "Prepaid balance recharge",
            "product": {"id": product["id"], "name": product["current"]["name"]},
            "contract": {"id": contract["id"]},
            "access_schedule": {
                "credit_type": dict(USD_CENTS),
                "schedule_items": [
                    {
                        "id": new_id(self.store, "schedule_item"),
                        "amount": amount,
                        "starting_at": start,
                        "ending_before": format_time(contract.get("_ending_ts") or FAR_FUTURE),
                    }
                ],
            },
            "invoice_schedule": {
                "credit_type": dict(USD_CENTS),
                "schedule_items": [
                    {
                        "id": new_id(self.store, "schedule_item"),
                        "amount": amount,
                        "unit_price": amount,
                        "quantity": 1,
                        "timestamp": start,
                    }
                ],
                "do_not_invoice": False,
            },
            "created_at": start,
            "_seq": now,
            "_threshold_recharge": True,
        }
        if gate_delivery is not None:
            commit["_gate_delivery"] = gate_delivery
        for key in ("priority", "applicable_product_ids", "applicable_product_tags", "specifiers", "description"):
            if commit_spec.get(key) is not None:
                commit[key] = commit_spec[key]
        contract.setdefault("commits", []).append(commit)
        self.store.put("contract", contract["id"], contract)
