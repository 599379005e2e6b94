"""Stripe's subscription billing, run whenever a clock moves and whenever usage arrives.

- Licensed items are billed in advance: quantity x unit amount for the period that starts (no proration).
- Metered items are billed in arrears: at each period end the cycle invoice (`billing_reason=subscription_cycle`)
  has one line per metered item, the customer's usage of the price's meter over `[current_period_start,
  current_period_end)` priced by the metered price, less what a threshold invoice already billed this period.
- `billing_thresholds.amount_gte` reached mid-period issues a `subscription_threshold` invoice at once.
- Invoices finalize immediately; credits apply at finalization (`credit_application`). With a default payment method
  (or nothing to pay) the invoice is paid, else it stays open and the subscription goes `past_due`.
- `cancel_at` (also set by `cancel_at_period_end`) ends the subscription; at a period end after its last cycle
  invoice, mid-period after a final invoice for the open usage.
Each subscription lives at its customer's clock: a test clock's `frozen_time`, else the world clock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import pricing
from .billing_periods import boundary, period_containing
from .credit_application import apply_credits
from .meters import aggregate
from .object_shapes import shaped
from .state import StripeState

LIVE = ("active", "trialing", "past_due", "unpaid", "incomplete")
_FALLS_PAST_DUE = {("charge_automatically", "active"), ("charge_automatically", "trialing")}


class BillingEngine:
    def __init__(self, state: StripeState) -> None:
        self.state = state
        # earliest period end or cancel_at among subscriptions on the world clock; None = to be recomputed
        self.world_due: float | None = None

    # ---------------------------------------------------------------------------------------------------------------
    # Time passing
    # ---------------------------------------------------------------------------------------------------------------
    def catch_up(self, *, clock_id: str | None = None, world: bool = False) -> int:
        """Bill every subscription on `clock_id` (or, with `world`, every one not on a test clock) up to its now."""
        issued = 0
        with self.state.lock:
            if clock_id is not None:
                customers = self.state.owned_by("customer", clock_id)
                subs = [s for c in customers for s in self.state.owned_by("subscription", c["id"])]
            else:
                subs = [s for s in self.state.all("subscription") if world and s.get("test_clock") is None]
            for sub in subs:
                if sub["status"] in LIVE:
                    issued += self.advance(sub["id"])
            if world:
                self.world_due = None
        return issued

    def catch_up_if_due(self) -> None:
        """Real time flows between clock moves: bill world-clock subscriptions whose period ended meanwhile."""
        with self.state.lock:
            if self.world_due is None:
                self.world_due = self._earliest_world_due()
            if self.state.world_now() >= self.world_due:
                self.catch_up(world=True)
                self.world_due = self._earliest_world_due()

    def _earliest_world_due(self) -> float:
        dues = [
            min(
                sub["_period_end"],
                sub["cancel_at"] if sub.get("cancel_at") is not None else float("inf"),
                sub.get("_schedule_phase_end") or float("inf"),
            )
            for sub in self.state.all("subscription")
            if sub["status"] in LIVE and sub.get("test_clock") is None
        ]
        return min(dues, default=float("inf"))

    def advance(self, sub_id: str) -> int:
        from .subscription_schedules import follow_schedule

        issued = 0
        while True:
            sub = self.state.get("subscription", sub_id)
            if sub["status"] not in LIVE:
                return issued
            now = self.state.now_for(sub["customer"])
            if sub.get("schedule"):
                follow_schedule(self.state, sub_id, min(now, sub["_period_end"]))
                sub = self.state.get("subscription", sub_id)
            issued += self._threshold(sub, now)
            sub = self.state.get("subscription", sub_id)
            end = sub["_period_end"]
            cancel_at = sub.get("cancel_at")
            if cancel_at is not None and cancel_at < end and cancel_at <= now:
                self.end_subscription(sub_id, cancel_at, invoice_now=True)
                return issued + 1
            if end > now:
                return issued
            self._cycle(sub)
            issued += 1

    def check_thresholds(self, customer_id: str) -> None:
        for sub in self.state.owned_by("subscription", customer_id):
            if sub["status"] in LIVE and sub.get("billing_thresholds"):
                self._threshold(sub, self.state.now_for(customer_id))

    # ---------------------------------------------------------------------------------------------------------------
    # Lines
    # ---------------------------------------------------------------------------------------------------------------
    def _items(self, sub: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.state.get("subscription_item", i) for i in sub["_items"]]

    def usage(self, customer_id: str, price: dict[str, Any], start: int, end: int) -> Decimal:
        meter = self.state.get("billing.meter", price["recurring"]["meter"])
        values = self.state.values(meter["event_name"], customer_id, start, end)
        return aggregate(meter["default_aggregation"]["formula"], values)

    def _line(
        self,
        sub: dict[str, Any],
        item: dict[str, Any],
        price: dict[str, Any],
        quantity: Decimal,
        amount: int,
        period: tuple[int, int],
        *,
        proration: bool = False,
    ) -> dict[str, Any]:
        product = self.state.get("product", price["product"])
        shown = int(quantity) if quantity == quantity.to_integral_value() else int(pricing.cents(quantity))
        line = shaped(
            "line_item",
            id=self.state.new_id("il"),
            amount=amount,
            subtotal=amount,
            currency=price["currency"],
            description=f"{shown} x {product['name']}",
            discount_amounts=[],
            discountable=True,
            discounts=[],
            invoice=None,
            metadata={},
            period={"start": period[0], "end": period[1]},
            quantity=shown,
            quantity_decimal=format(quantity.normalize(), "f"),
            subscription=sub["id"],
            pretax_credit_amounts=[],
            taxes=[],
            parent={
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item["id"],
                },
            },
            pricing={
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": pricing.unit_amount_decimal(price),
            },
        )
        line["_price"] = price["id"]
        line["_item"] = item["id"]
        return line

    def metered_lines(
        self, sub: dict[str, Any], start: int, end: int, *, until: int | None = None, free: bool | None = None
    ) -> list[tuple[dict[str, Any], Decimal, int]]:
        """(line, period total, cumulative amount) per metered item, net of what this period already billed.

        Usage during a trial is shown but not charged (`free`, by default while the subscription is trialing).
        """
        free = sub["status"] == "trialing" if free is None else free
        lines = []
        for item in self._items(sub):
            price = self.state.get("price", item["price"])
            if (price.get("recurring") or {}).get("usage_type") != "metered":
                continue
            total = self.usage(sub["customer"], price, start, until if until is not None else end)
            cumulative = 0 if free else pricing.amount(price, total)
            billed_quantity = Decimal(item.get("_billed_quantity") or "0")
            billed_amount = int(item.get("_billed_amount") or 0)
            line = self._line(sub, item, price, total - billed_quantity, cumulative - billed_amount, (start, end))
            lines.append((line, total, cumulative))
        return lines

    def licensed_lines(self, sub: dict[str, Any], period: tuple[int, int], *, free: bool) -> list[dict[str, Any]]:
        lines = []
        for item in self._items(sub):
            price = self.state.get("price", item["price"])
            if (price.get("recurring") or {}).get("usage_type") == "metered":
                continue
            quantity = Decimal(int(item.get("quantity") or 1))
            amount = 0 if free else pricing.amount(price, quantity)
            lines.append(self._line(sub, item, price, quantity, amount, period))
        return lines

    # ---------------------------------------------------------------------------------------------------------------
    # Invoices
    # ---------------------------------------------------------------------------------------------------------------
    def build_invoice(
        self,
        sub: dict[str, Any],
        *,
        reason: str,
        lines: list[dict[str, Any]],
        period: tuple[int, int],
        at: int,
        invoice_id: str | None = None,
    ) -> dict[str, Any]:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub.get("metadata") or {}), "subscription": sub["id"]},
        }
        return self.new_invoice(
            self.state.get("customer", sub["customer"]),
            reason=reason,
            lines=lines,
            period=period,
            at=at,
            collection_method=sub["collection_method"],
            currency=sub["currency"],
            parent=parent,
            default_payment_method=sub.get("default_payment_method"),
            invoice_id=invoice_id,
        )

    def new_invoice(
        self,
        customer: dict[str, Any],
        *,
        reason: str,
        lines: list[dict[str, Any]],
        period: tuple[int, int],
        at: int,
        collection_method: str,
        currency: str,
        parent: dict[str, Any] | None,
        default_payment_method: str | None = None,
        invoice_id: str | None = None,
        days_until_due: int | None = None,
    ) -> dict[str, Any]:
        """A draft invoice of `customer` (a subscription's, or with `parent=None` a one-off `manual` one)."""
        invoice_id = invoice_id or self.state.new_id("in")
        for line in lines:
            line["invoice"] = invoice_id
        due_days = days_until_due if days_until_due is not None else 30
        invoice = shaped(
            "invoice",
            id=invoice_id,
            account_country="US",
            account_name="billmig local",
            amount_shipping=0,
            attempt_count=0,
            attempted=False,
            auto_advance=False,
            billing_reason=reason,
            collection_method=collection_method,
            created=at,
            currency=currency,
            customer=customer["id"],
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            customer_phone=customer.get("phone"),
            customer_tax_exempt="none",
            customer_tax_ids=[],
            default_payment_method=default_payment_method,
            discounts=[],
            due_date=at + due_days * 86400 if collection_method == "send_invoice" else None,
            effective_at=None,
            ending_balance=None,
            issuer={"type": "self"},
            metadata={},
            parent=parent,
            period_start=period[0],
            period_end=period[1],
            post_payment_credit_notes_amount=0,
            pre_payment_credit_notes_amount=0,
            starting_balance=0,
            status="draft",
            status_transitions={
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            subscription=None,
            test_clock=customer.get("test_clock"),
            total_discount_amounts=[],
            total_taxes=[],
            total_pretax_credit_amounts=[],
            amount_overpaid=0,
        )
        invoice["_lines"] = lines
        self.totals(invoice)
        return invoice

    @staticmethod
    def totals(invoice: dict[str, Any]) -> None:
        subtotal = sum(line["amount"] for line in invoice["_lines"])
        credits = sum(c["amount"] for c in invoice.get("total_pretax_credit_amounts") or [])
        total = subtotal - credits
        invoice.update(
            subtotal=subtotal,
            subtotal_excluding_tax=subtotal,
            total=total,
            total_excluding_tax=total,
            amount_due=max(total, 0),
            amount_remaining=max(total, 0),
            amount_paid=0,
        )

    def finalize(self, sub: dict[str, Any], invoice: dict[str, Any], at: int) -> dict[str, Any]:
        """Apply credits, then pay with the default payment method (or leave open), and store."""
        self.finalize_invoice(invoice, at, default_payment_method=sub.get("default_payment_method"))
        sub = dict(sub)
        paid = invoice["status"] == "paid"
        if paid and sub["status"] == "past_due":
            sub["status"] = "active"
        elif not paid and (sub["collection_method"], sub["status"]) in _FALLS_PAST_DUE:
            sub["status"] = "past_due"
        sub["latest_invoice"] = invoice["id"]
        self.state.put(sub)
        return invoice

    def finalize_invoice(
        self, invoice: dict[str, Any], at: int, *, default_payment_method: str | None = None, pay: bool = True
    ) -> dict[str, Any]:
        """Draft -> open: credits, number, then (charge_automatically, `pay`) one payment attempt; stored."""
        apply_credits(self.state, invoice, at, record=True)
        self.totals(invoice)
        customer = self.state.get("customer", invoice["customer"])
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        self.state.put({**customer, "next_invoice_sequence": customer["next_invoice_sequence"] + 1})
        invoice["status_transitions"]["finalized_at"] = at
        invoice["effective_at"] = at
        invoice["ending_balance"] = 0
        invoice["status"] = "open"
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice, at)
        elif invoice["collection_method"] == "charge_automatically" and pay:
            self.attempt_payment(invoice, at, default_payment_method=default_payment_method)
        self.state.put(invoice)
        return invoice

    def attempt_payment(self, invoice: dict[str, Any], at: int, *, default_payment_method: str | None = None) -> str:
        """One charge of the invoice's amount due: "paid", "declined" (a declining test card) or "no_payment_method"."""
        customer = self.state.get("customer", invoice["customer"])
        method_id = (
            invoice.get("default_payment_method")
            or default_payment_method
            or (customer.get("invoice_settings") or {}).get("default_payment_method")
        )
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
        if not method_id:
            outcome = "no_payment_method"
        elif (self.state.store.get("payment_method", method_id) or {}).get("_declines"):
            outcome = "declined"
        else:
            self._mark_paid(invoice, at)
            outcome = "paid"
        self.state.put(invoice)
        return outcome

    @staticmethod
    def _mark_paid(invoice: dict[str, Any], at: int) -> None:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = at

    # ---------------------------------------------------------------------------------------------------------------
    # Lifecycle events
    # ---------------------------------------------------------------------------------------------------------------
    def first_invoice(self, sub: dict[str, Any], at: int) -> dict[str, Any]:
        """`subscription_create`: licensed items for the first period, in advance (free during a trial)."""
        period = (sub["_period_start"], sub["_period_end"])
        lines = self.licensed_lines(sub, period, free=sub["status"] == "trialing")
        proration = sub.get("_first_period_proration")
        if proration is not None:  # up to a later anchor: the part of a cycle that period is (none: free)
            lines = self._first_period_prorations(sub, lines, free=proration == "none")
        invoice = self.build_invoice(sub, reason="subscription_create", lines=lines, period=(at, at), at=at)
        return self.finalize(sub, invoice, at)

    def _first_period_prorations(
        self, sub: dict[str, Any], lines: list[dict[str, Any]], *, free: bool
    ) -> list[dict[str, Any]]:
        start, anchor = sub["_period_start"], sub["_period_end"]
        interval, count = self._interval(sub)
        cycle = anchor - boundary(anchor, interval, count, -1)
        share = Decimal(anchor - start) / Decimal(cycle)
        for line in lines:
            amount = 0 if free else pricing.cents(Decimal(line["amount"]) * share)
            line["amount"] = line["subtotal"] = amount
            line["description"] = "Remaining time on " + line["description"]
            line["parent"]["subscription_item_details"]["proration"] = True
        return lines

    def _threshold(self, sub: dict[str, Any], now: int) -> int:
        thresholds = sub.get("billing_thresholds") or {}
        amount_gte = thresholds.get("amount_gte")
        start, end = sub["_period_start"], sub["_period_end"]
        if not amount_gte or sub["status"] == "trialing" or now >= end:  # an ended period gets its cycle invoice
            return 0
        measured = self.metered_lines(sub, start, end, until=min(end, now + 1))
        unbilled = sum(line["amount"] for line, _total, _cumulative in measured)
        if unbilled < amount_gte:
            return 0
        lines = [line for line, _total, _cumulative in measured if line["amount"] or line["quantity"]]
        for line in lines:
            line["period"] = {"start": start, "end": now}
        invoice = self.build_invoice(sub, reason="subscription_threshold", lines=lines, period=(start, now), at=now)
        invoice["threshold_reason"] = {"amount_gte": amount_gte, "item_reasons": []}
        self._mark_billed(measured)
        self.finalize(sub, invoice, now)
        return 1

    def _mark_billed(self, measured: list[tuple[dict[str, Any], Decimal, int]]) -> None:
        for line, total, cumulative in measured:
            item = dict(self.state.get("subscription_item", line["_item"]))
            item["_billed_quantity"] = str(total)
            item["_billed_amount"] = cumulative
            self.state.put(item)

    def _cycle(self, sub: dict[str, Any]) -> None:
        start, end = sub["_period_start"], sub["_period_end"]
        cancel_at = sub.get("cancel_at")
        ending = cancel_at is not None and cancel_at <= end
        measured = self.metered_lines(sub, start, end)  # before a trial ends: its usage is free
        if sub["status"] == "trialing" and sub.get("trial_end") is not None and sub["trial_end"] <= end:
            sub = {**sub, "status": "active"}
            self.state.put(sub)
        next_period = self._next_period(sub, end)
        lines = [line for line, _total, _cumulative in measured]
        if not ending:
            lines += self.licensed_lines(sub, next_period, free=False)
        invoice = self.build_invoice(sub, reason="subscription_cycle", lines=lines, period=(start, end), at=end)
        self.finalize(sub, invoice, end)
        sub = self.state.get("subscription", sub["id"])
        if ending:
            self._close(sub, end)
        else:
            self._set_period(sub, next_period)

    def _next_period(self, sub: dict[str, Any], end: int) -> tuple[int, int]:
        recurring = self._interval(sub)
        return period_containing(sub["billing_cycle_anchor"], recurring[0], recurring[1], end)

    def _interval(self, sub: dict[str, Any]) -> tuple[str, int]:
        price = self.state.get("price", self._items(sub)[0]["price"])
        return price["recurring"]["interval"], int(price["recurring"]["interval_count"])

    def _set_period(self, sub: dict[str, Any], period: tuple[int, int]) -> None:
        sub = dict(sub)
        sub["_period_start"], sub["_period_end"] = period
        self.state.put(sub)
        for item in self._items(sub):
            self.state.put(
                {
                    **item,
                    "current_period_start": period[0],
                    "current_period_end": period[1],
                    "_billed_quantity": "0",
                    "_billed_amount": 0,
                }
            )

    def _close(self, sub: dict[str, Any], at: int) -> None:
        sub = dict(sub)
        sub.update(status="canceled", ended_at=at, canceled_at=sub.get("canceled_at") or at)
        self.state.put(sub)

    def end_subscription(
        self,
        sub_id: str,
        at: int,
        *,
        invoice_now: bool,
        prorate: bool = False,
        reason: str = "subscription_cycle",
    ) -> None:
        """End now: with `invoice_now`, a final invoice bills the period's open usage (and, with `prorate`, credits
        the unused part of licensed items); without, un-invoiced usage is dropped as Stripe drops pending prorations.
        """
        sub = self.state.get("subscription", sub_id)
        start, end = sub["_period_start"], sub["_period_end"]
        if invoice_now:
            measured = self.metered_lines(sub, start, end, until=at)
            lines = [line for line, _total, _cumulative in measured]
            for line in lines:
                line["period"] = {"start": start, "end": at}
            if prorate and sub["status"] != "trialing":
                lines += self._unused_time(sub, at)
            invoice = self.build_invoice(sub, reason=reason, lines=lines, period=(start, at), at=at)
            self._mark_billed(measured)
            self.finalize(sub, invoice, at)
            sub = self.state.get("subscription", sub_id)
        self._close(sub, at)

    def _unused_time(self, sub: dict[str, Any], at: int) -> list[dict[str, Any]]:
        start, end = sub["_period_start"], sub["_period_end"]
        lines = []
        for line in self.licensed_lines(sub, (at, end), free=False):
            unused = Decimal(end - at) / Decimal(end - start)
            line["amount"] = line["subtotal"] = -pricing.cents(Decimal(line["amount"]) * unused)
            line["description"] = "Unused time on " + line["description"]
            line["parent"]["subscription_item_details"]["proration"] = True
            lines.append(line)
        return lines

    def preview(self, sub: dict[str, Any]) -> dict[str, Any]:
        """The next cycle invoice if the period ended now: usage so far, next period's licensed fees, credits."""
        start, end = sub["_period_start"], sub["_period_end"]
        measured = self.metered_lines(sub, start, end)
        lines = [line for line, _total, _cumulative in measured]
        ending = sub.get("cancel_at") is not None and sub["cancel_at"] <= end
        if not ending:
            lines += self.licensed_lines(sub, self._next_period(sub, end), free=False)
        invoice = self.build_invoice(
            sub,
            reason="upcoming",
            lines=lines,
            period=(start, end),
            at=end,
            invoice_id="upcoming_in_" + sub["id"].removeprefix("sub_"),
        )
        apply_credits(self.state, invoice, end, record=False)
        self.totals(invoice)
        invoice["id"] = None
        return invoice
