"""One customer's billing periods compared line by line, Stripe's invoice against Metronome's, each difference given
its root cause, evidence and a suggested fix.

Closed periods compare Stripe's finalized cycle invoice with Metronome's finalized (unbillable) usage invoice for the
same days; the open period compares Stripe's invoice preview with Metronome's draft (`closed=False`). A period counts
as closed only once both invoices are final and the late-event window after its end has passed, so the gate never
judges a period whose usage may still arrive. Only periods that begin inside the dual write are compared (usage before
the parallel-run start never reached Metronome). Reads only: nothing is written to either vendor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billmig.metronome.config import ParityTolerances
from billmig.metronome.contract_terms import moved_at_cutover
from billmig.metronome.ports import MetronomeContract, MetronomeInvoice
from billmig.metronome.resolution import ResolvedConfig, ResolvedPrice
from billmig.parity.ports import MetronomeParityReads, StripeParityReads
from billmig.parity.verdicts import Cause, Difference, LineParity, PeriodParity
from billmig.stripe_source.views import StripeCreditGrant, StripeCustomer, StripeInvoice, StripeSubscription
from billmig.usage.completeness import CompletenessRow

FINAL_STRIPE = frozenset({"open", "paid", "uncollectible"})
LIVE_STRIPE = frozenset({"active", "past_due", "trialing"})
ALIGNMENT_SLACK = timedelta(days=1)  # a contract starts at 00:00 of Stripe's start day: the first period may be longer
SAME_INSTANT = timedelta(minutes=1)
CREDITS_KEY = "credits"


@dataclass(frozen=True)
class ParityCustomer:
    """A customer of the parallel run as the progress store has it."""

    batch_id: str
    stripe_customer_id: str
    ingest_alias: str | None
    dual_write_from: datetime | None
    cutover_at: datetime | None


CompletenessCheck = Callable[[datetime, datetime], list[CompletenessRow]]
"""The dual-write completeness rows of the customer over [start, end) (late-event window applied)."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    stripe: StripeInvoice
    subscription: StripeSubscription
    closed_in_stripe: bool
    threshold_invoice_ids: tuple[str, ...] = ()  # the threshold invoices summed into `stripe` (threshold billing)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%MZ}..{self.end:%Y-%m-%dT%H:%MZ}"


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _line_key(mapping: ResolvedPrice) -> str:
    return mapping.stripe_price


def _values_text(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(values.items()))


@dataclass
class _Side:
    quantity: Decimal = Decimal(0)
    cents: int = 0
    seen: bool = False

    def add(self, quantity: Decimal | float | None, cents: int) -> None:
        self.quantity += Decimal(str(quantity or 0))
        self.cents += cents
        self.seen = True


DRIFT_FIX = (
    "nothing to change in either vendor if the usage lines agree: metronome.settle_balances sets each moved commit and "
    "credit to Stripe's remainder at the cutover boundary and the credit check after the first Metronome cycle proves "
    "it; approve the customer (`billmig parity approve`) to cut it over"
)


@dataclass
class _Comparison:
    """What one period's comparison accumulates before it becomes a `PeriodParity`."""

    lines: list[LineParity] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    excluded_cents: int = 0


def stripe_periods(
    stripe: StripeParityReads, customer: ParityCustomer, now: datetime, period_filter: tuple[datetime, datetime] | None
) -> tuple[list[Period], StripeCustomer]:
    """The customer's Stripe periods inside the dual write: every cycle invoice, then the open period's preview."""
    found: list[Period] = []
    stripe_customer = stripe.customer(customer.stripe_customer_id)
    subscriptions = list(stripe_customer.subscriptions)
    start_of_dual_write = customer.dual_write_from or datetime.min.replace(tzinfo=UTC)
    for subscription in subscriptions:
        invoices = [i for i in stripe.invoices(subscription.id) if i.status in FINAL_STRIPE and i.lines]
        periods: list[Period] = []
        for invoice in invoices:
            if invoice.billing_reason not in ("subscription_cycle", "subscription_update"):
                continue
            periods.append(
                Period(_at(invoice.period_start), _at(invoice.period_end), invoice, subscription, closed_in_stripe=True)
            )
        if subscription.status in LIVE_STRIPE and subscription.current_period_start is not None:
            preview = stripe.invoice_preview(customer.stripe_customer_id, subscription.id)
            if preview is not None:
                periods.append(Period(_at(preview.period_start), _at(preview.period_end), preview, subscription, False))
        thresholds = [i for i in invoices if i.billing_reason == "subscription_threshold"]
        found += billed_with_thresholds(periods, thresholds, subscription)
    found = [p for p in found if p.start >= start_of_dual_write - ALIGNMENT_SLACK and p.start < now]
    if customer.cutover_at is not None:
        found = [p for p in found if p.start < customer.cutover_at]
    if period_filter is not None:
        found = [p for p in found if period_filter[0] <= p.start < period_filter[1]]
    return sorted(found, key=lambda p: p.start), stripe_customer


def billed_with_thresholds(
    periods: list[Period], thresholds: list[StripeInvoice], subscription: StripeSubscription
) -> list[Period]:
    """A threshold customer's period is billed in parts: each threshold invoice bills the usage so far, and the cycle
    invoice (or the preview) only what is left. Metronome bills the whole period at once, so the parts are summed
    into the period their threshold instant falls in; a threshold invoice in no known period stays on its own."""
    merged = []
    left = list(thresholds)
    for period in periods:
        inside = [t for t in left if period.start < _at(t.period_end) <= period.end]
        left = [t for t in left if t not in inside]
        if not inside:
            merged.append(period)
            continue
        parts = [*inside, period.stripe]
        invoice = replace(
            period.stripe,
            subtotal=sum(p.subtotal for p in parts),
            total=sum(p.total for p in parts),
            credits_applied=sum(p.credits_applied for p in parts),
            lines=tuple(line for p in parts for line in p.lines),
            credit_transactions=tuple(t for p in parts for t in p.credit_transactions),
        )
        merged.append(replace(period, stripe=invoice, threshold_invoice_ids=tuple(t.id for t in inside)))
    merged += [Period(_at(t.period_start), _at(t.period_end), t, subscription, closed_in_stripe=True) for t in left]
    return merged


def check_customer(
    customer: ParityCustomer,
    config: ResolvedConfig,
    stripe: StripeParityReads,
    metronome: MetronomeParityReads,
    completeness: CompletenessCheck,
    *,
    parity_run_id: str,
    now: datetime,
    late_event_window: timedelta,
    period_filter: tuple[datetime, datetime] | None = None,
) -> list[PeriodParity]:
    periods, stripe_customer = stripe_periods(stripe, customer, now, period_filter)
    checker = _CustomerCheck(customer, config, stripe, metronome, completeness, parity_run_id, now, late_event_window)
    alias = customer.ingest_alias or stripe_customer.metadata.get(config.internal_id_metadata_key)
    contract_problem = checker.find_contract(list(stripe_customer.subscriptions), alias)
    return [checker.period(p, contract_problem) for p in periods]


class _CustomerCheck:
    def __init__(
        self,
        customer: ParityCustomer,
        config: ResolvedConfig,
        stripe: StripeParityReads,
        metronome: MetronomeParityReads,
        completeness: CompletenessCheck,
        parity_run_id: str,
        now: datetime,
        late_event_window: timedelta,
    ) -> None:
        self.customer = customer
        self.config = config
        self.tolerances: ParityTolerances = config.parity
        self.stripe = stripe
        self.metronome = metronome
        self.completeness = completeness
        self.parity_run_id = parity_run_id
        self.now = now
        self.late = late_event_window
        self.metronome_id: str | None = None
        self.contract: MetronomeContract | None = None
        self.invoices: list[MetronomeInvoice] = []
        self._grants: list[StripeCreditGrant] | None = None
        self._transactions: dict[str, str] | None = None
        self._price_keys: dict[str, str | None] = {}

    # -- the Metronome side --------------------------------------------------------------------------------------------
    def find_contract(self, subscriptions: list[StripeSubscription], alias: str | None) -> Difference | None:
        """Every active Stripe subscriber of the batch must hold a Metronome contract."""
        live = [s.id for s in subscriptions if s.status in LIVE_STRIPE]
        for subscription in subscriptions:
            for item in subscription.items:
                self._price_keys[item.price_id] = item.lookup_key
        found = self.metronome.customer_by_alias(alias) if alias else None
        if found is None:
            return Difference(
                cause=Cause.NO_CONTRACT,
                evidence=f"Stripe subscription(s) {', '.join(live) or 'none live'}; no Metronome customer has the "
                f"ingest alias {alias!r}",
                suggested_fix="resume the migration batch (`billmig metronome start` again) so prepare and contract "
                "run for this customer, or exclude it from the batch",
            )
        self.metronome_id = found.id
        contracts = self.metronome.contracts(found.id)
        if not contracts:
            return Difference(
                cause=Cause.NO_CONTRACT,
                evidence=f"Stripe subscription(s) {', '.join(live) or 'none live'}; Metronome customer {found.id} "
                f"(alias {alias!r}) has no contract",
                suggested_fix="resume the migration batch (`billmig metronome start` again): the contract step creates "
                "it with the Stripe grants moved",
            )
        self.contract = contracts[0]
        self.invoices = [i for i in self.metronome.usage_invoices(found.id) if i.status != "VOID"]
        return None

    def _matching_invoice(self, period: Period) -> tuple[MetronomeInvoice | None, list[MetronomeInvoice]]:
        overlapping = [
            i
            for i in self.invoices
            if i.start is not None and i.end is not None and i.start < period.end and i.end > period.start
        ]
        for invoice in overlapping:
            assert invoice.start is not None and invoice.end is not None
            if abs(invoice.end - period.end) <= SAME_INSTANT and abs(invoice.start - period.start) <= ALIGNMENT_SLACK:
                return invoice, overlapping
        return None, overlapping

    # -- one period ----------------------------------------------------------------------------------------------------
    def period(self, period: Period, contract_problem: Difference | None) -> PeriodParity:
        closed = period.closed_in_stripe and self.now >= period.end + self.late
        record = PeriodParity(
            stripe_customer_id=self.customer.stripe_customer_id,
            batch_id=self.customer.batch_id,
            period_start=period.start,
            period_end=period.end,
            closed=closed,
            parity_run_id=self.parity_run_id,
            checked_at=self.now,
            stripe_total_cents=period.stripe.total,
            within_tolerance=False,
            stripe_invoice_id=period.stripe.id if period.closed_in_stripe else None,
            stripe_threshold_invoice_ids=list(period.threshold_invoice_ids),
            stripe_subtotal_cents=period.stripe.subtotal,
            stripe_credits_cents=period.stripe.credits_applied,
        )
        if contract_problem is not None:
            record.differences.append(contract_problem.model_copy(update={"cents": period.stripe.total}))
            return record
        invoice, overlapping = self._matching_invoice(period)
        if invoice is None:
            record.differences.append(self._misalignment(period, overlapping))
            return record
        record.closed = closed and invoice.status == "FINALIZED"
        comparison = self._compare(period, invoice)
        if period.closed_in_stripe:  # the open period's usage is still arriving: the gate judges closed ones only
            comparison.differences.extend(self._completeness(period))
        stripe_total = period.stripe.total - comparison.excluded_cents
        metronome_credits = -sum(line.total for line in invoice.lines if line.kind in ("commit", "credit"))
        record.stripe_total_cents = stripe_total
        record.metronome_total_cents = invoice.total
        record.metronome_invoice_id = invoice.id
        record.metronome_subtotal_cents = sum(line.total for line in invoice.lines if line.kind == "usage")
        record.metronome_credits_cents = metronome_credits
        record.excluded_cents = comparison.excluded_cents
        record.lines = comparison.lines
        total_within = self.tolerances.invoice_within(stripe_total, invoice.total)
        if stripe_total != invoice.total and not comparison.differences:
            compared = sum(1 for line in comparison.lines if line.excluded_reason is None and line.key != CREDITS_KEY)
            comparison.differences.append(self._unexplained_total(stripe_total, invoice.total, total_within, compared))
        record.differences = comparison.differences
        blocking = {Cause.UNMAPPED_PRICE, Cause.NO_CONTRACT, Cause.PERIOD_MISALIGNMENT, Cause.CREDIT_ORDER}
        judged = record.lines
        if any(d.cause is Cause.BALANCE_DRIFT for d in record.differences):
            # the settling step puts the copies back at Stripe's remainder at the cutover boundary, and the credit
            # check proves it: the period is judged on its usage, before either side's credits
            judged = [line for line in record.lines if line.key != CREDITS_KEY]
            total_within = self.tolerances.invoice_within(
                stripe_total + period.stripe.credits_applied, invoice.total + metronome_credits
            )
        record.within_tolerance = (
            total_within
            and all(line.within_tolerance for line in judged)
            and not any(d.cause in blocking for d in record.differences)
        )
        return record

    def _misalignment(self, period: Period, overlapping: list[MetronomeInvoice]) -> Difference:
        seen = "; ".join(
            f"{i.id} {i.start:%Y-%m-%dT%H:%MZ}..{i.end:%Y-%m-%dT%H:%MZ}" for i in overlapping if i.start and i.end
        )
        anchor = period.subscription.billing_cycle_anchor
        anchor_text = f"{_at(anchor):%Y-%m-%dT%H:%M:%SZ}" if anchor else "unknown"
        schedule = (self.contract.statement_schedule if self.contract else {}) or {}
        return Difference(
            cause=Cause.PERIOD_MISALIGNMENT,
            cents=period.stripe.total,
            evidence=f"Stripe period {period.label} (billing cycle anchor {anchor_text}); Metronome usage invoices "
            f"over it: {seen or 'none'} (statement schedule day {schedule.get('day')!r})",
            suggested_fix="statement schedule CUSTOM_DATE with billing_anchor_date = Stripe's billing cycle anchor "
            "(decisions.md (a)), so every Metronome period covers the Stripe period's days",
        )

    def _unexplained_total(self, stripe_total: int, metronome_total: int, within: bool, lines: int) -> Difference:
        """Rounding only when it can be: each side rounds a line to the cent, so totals of N agreeing lines can
        differ by at most a cent a line; more is a difference no compared line explains, even inside tolerance."""
        cents = metronome_total - stripe_total
        evidence = f"every line agrees, totals differ: Stripe {stripe_total}, Metronome {metronome_total} cents"
        if abs(cents) <= max(1, lines):
            return Difference(
                cause=Cause.ROUNDING, cents=cents, evidence=evidence, suggested_fix="none needed (sub-cent rounding)"
            )
        return Difference(
            cause=Cause.UNEXPLAINED_TOTAL,
            cents=cents,
            evidence=f"{evidence}: more than a cent a line over {lines} compared line(s), so not rounding",
            suggested_fix=(
                "within the invoice tolerance, so it holds nothing back; still, compare the invoices' line items by "
                "hand: a fee, tax or adjustment on one side only?"
            )
            if within
            else "compare the invoices' line items by hand: the difference is in no compared line (a fee, tax or "
            "adjustment on one side only?)",
        )

    # -- lines ---------------------------------------------------------------------------------------------------------
    def _mapping(self, price_id: str | None) -> tuple[ResolvedPrice | None, str | None]:
        lookup = self._price_keys.get(price_id or "")
        return (self.config.mapping_for(price_id, lookup) if price_id else None), lookup

    def _excluded(self, price_id: str, lookup: str | None, mapping: ResolvedPrice | None) -> str | None:
        excluded = self.tolerances.exclude_prices
        reason = excluded.get(price_id) or (excluded.get(lookup) if lookup else None)
        if reason:
            return f"excluded by config (parity.exclude_prices): {reason}"
        if mapping is not None and mapping.not_migrated:
            return (
                f"not migrated (prices: not_migrated): {mapping.not_migrated}; the contract carries no recurring charge"
            )
        return None

    def _compare(self, period: Period, invoice: MetronomeInvoice) -> _Comparison:
        comparison = _Comparison()
        stripe_sides: dict[str, _Side] = {}
        metronome_sides: dict[str, _Side] = {}
        mappings: dict[str, ResolvedPrice] = {}
        for line in period.stripe.lines:
            mapping, lookup = self._mapping(line.price_id)
            name = lookup or line.price_id or "one-off item"
            reason = self._excluded(line.price_id or "", lookup, mapping) if line.price_id else None
            if reason is not None:
                comparison.excluded_cents += line.amount
                comparison.lines.append(
                    LineParity(
                        key=name,
                        stripe_quantity=line.quantity,
                        stripe_cents=line.amount,
                        within_tolerance=True,
                        excluded_reason=reason,
                    )
                )
                continue
            if mapping is None or mapping.product_id is None:
                comparison.lines.append(
                    LineParity(
                        key=name, stripe_quantity=line.quantity, stripe_cents=line.amount, within_tolerance=False
                    )
                )
                comparison.differences.append(
                    Difference(
                        cause=Cause.UNMAPPED_PRICE,
                        line_key=name,
                        cents=-line.amount,
                        evidence=f"Stripe line for price {line.price_id} ({line.quantity:g} units, {line.amount} "
                        "cents) has no price mapping in the migration config",
                        suggested_fix=f"add {name!r} to the config's prices (a Metronome product and pricing-group "
                        "values, or not_migrated with the reason)",
                    )
                )
                continue
            key = _line_key(mapping)
            mappings[key] = mapping
            stripe_sides.setdefault(key, _Side()).add(line.quantity, line.amount)
        by_product = {(m.product_id, tuple(sorted(m.pricing_group_values.items()))): m for m in self.config.prices}
        unknown: list[tuple[str, _Side, dict[str, str], str | None]] = []
        for mline in invoice.lines:
            if mline.kind != "usage":
                continue
            mapping = by_product.get((mline.product_id, tuple(sorted(mline.pricing_group_values.items()))))
            if mapping is None:
                side = _Side()
                side.add(mline.quantity, mline.total)
                unknown.append((mline.name, side, mline.pricing_group_values, mline.product_id))
                continue
            mappings.setdefault(_line_key(mapping), mapping)
            metronome_sides.setdefault(_line_key(mapping), _Side()).add(mline.quantity, mline.total)
        for key in sorted(set(stripe_sides) | set(metronome_sides)):
            comparison.lines.append(
                self._line(period, key, mappings[key], stripe_sides.get(key), metronome_sides.get(key), comparison)
            )
        for name, side, values, product_id in unknown:
            label = f"{name} {{{_values_text(values)}}}" if values else name
            comparison.lines.append(
                LineParity(
                    key=label,
                    metronome_quantity=float(side.quantity),
                    metronome_cents=side.cents,
                    within_tolerance=self.tolerances.line_within(0, side.cents),
                )
            )
            if side.cents:
                comparison.differences.append(
                    Difference(
                        cause=Cause.EXTRA_USAGE,
                        line_key=label,
                        cents=side.cents,
                        evidence=f"Metronome charges {side.quantity} of product {product_id} ({_values_text(values)}) "
                        "that no Stripe price of the config maps onto",
                        suggested_fix="map the Stripe price billing this usage onto that product, or stop sending it",
                    )
                )
        comparison.lines.append(self._credits(period, invoice, comparison))
        return comparison

    def _line(
        self,
        period: Period,
        key: str,
        mapping: ResolvedPrice,
        stripe: _Side | None,
        metronome: _Side | None,
        comparison: _Comparison,
    ) -> LineParity:
        s, m = stripe or _Side(), metronome or _Side()
        within = self.tolerances.line_within(s.cents, m.cents)
        line = LineParity(
            key=key,
            stripe_quantity=float(s.quantity) if stripe else None,
            metronome_quantity=float(m.quantity) if metronome else None,
            stripe_cents=s.cents if stripe else None,
            metronome_cents=m.cents if metronome else None,
            within_tolerance=within,
        )
        if s.cents == m.cents and s.quantity == m.quantity:
            return line
        cents = m.cents - s.cents
        unrated = self._pricing_group_mismatch(period, key, mapping, cents) if m.quantity < s.quantity else None
        if unrated is not None:
            comparison.differences.append(unrated)
        elif s.quantity == m.quantity:
            small = abs(cents) <= max(1, self.tolerances.line_cents)
            comparison.differences.append(
                Difference(
                    cause=Cause.ROUNDING if small else Cause.UNMAPPED_PRICE,
                    line_key=key,
                    cents=cents,
                    evidence=f"same quantity {s.quantity} on both sides; Stripe {s.cents}, Metronome {m.cents} cents",
                    suggested_fix="none needed (rounding per window in Metronome, per line in Stripe)"
                    if small
                    else f"the rate of Metronome product {mapping.product_id} differs from Stripe price {key!r}: map "
                    "the price onto the product whose rate matches, or correct the rate card",
                )
            )
        else:
            missing = m.quantity < s.quantity
            comparison.differences.append(
                Difference(
                    cause=Cause.MISSING_USAGE if missing else Cause.EXTRA_USAGE,
                    line_key=key,
                    cents=cents,
                    evidence=f"quantity on the invoices: Stripe {s.quantity}, Metronome {m.quantity} "
                    f"({s.cents} vs {m.cents} cents)",
                    suggested_fix="replay the events Metronome lacks (the usage dead-letter queue names them: "
                    "`billmig usage replay --dlq`)"
                    if missing
                    else "find the events Metronome has twice or that Stripe refused (different transaction ids, "
                    "or events after Stripe's time window)",
                )
            )
        return line

    def _pricing_group_mismatch(
        self, period: Period, key: str, mapping: ResolvedPrice, cents: int
    ) -> Difference | None:
        """Usage in Metronome with no charge: values of the product's pricing-group key that have usage but no rate."""
        if self.metronome_id is None or mapping.product_id is None:
            return None
        product = self.metronome.usage_product(mapping.product_id)
        if not product.pricing_group_key or product.billable_metric_id is None:
            return None
        group_key = product.pricing_group_key[0]
        usage = self.metronome.usage_by_group(
            self.metronome_id, product.billable_metric_id, group_key, period.start, period.end
        )
        rated = {
            values.get(group_key)
            for values in self.metronome.rated_values(self.config.rate_card_id, product.id, period.start)
        }
        if None in rated:
            return None  # a rate for every value
        unrated = {value: amount for value, amount in usage.items() if amount and value not in rated}
        wanted = mapping.pricing_group_values.get(group_key)
        if not unrated and wanted not in rated and wanted is not None:
            unrated = {wanted: usage.get(wanted, Decimal(0))}
        if not unrated:
            return None
        parts, fixes = [], []
        for value, amount in sorted(unrated.items()):
            twin = next((r for r in rated if r is not None and r.lower() == value.lower() and r != value), None)
            parts.append(
                f"{group_key}={value!r}: {amount} of metric {product.billable_metric_id} in usage/groups, no rate"
                + (f" (the rate card has {twin!r}: the values differ only in case)" if twin else "")
            )
            fixes.append(
                f"send {group_key}={twin!r} instead of {value!r} (Metronome matches pricing-group values "
                "case-sensitively): normalise it at the source or in the usage router's rules"
                if twin
                else f"add a rate for {product.name} at {group_key}={value!r} to rate card "
                f"{self.config.rate_card_id}, or map the Stripe price onto a rated value"
            )
        return Difference(
            cause=Cause.PRICING_GROUP_MISMATCH,
            line_key=key,
            cents=cents,
            evidence=f"product {product.name} ({product.id}) over {period.label}: "
            + "; ".join(parts)
            + f"; rated values: {sorted(r for r in rated if r is not None)}",
            suggested_fix="; ".join(fixes),
        )

    # -- credits -------------------------------------------------------------------------------------------------------
    def _credits(self, period: Period, invoice: MetronomeInvoice, comparison: _Comparison) -> LineParity:
        """Commit and credit drawdown: the total, and per grant when Stripe's ledger names them (not on previews)."""
        names = {b.id: (b.name or b.id) for b in (self.contract.balances if self.contract else ())}
        metronome_by_grant: dict[str, int] = {}
        for applied in invoice.lines:
            if applied.kind in ("commit", "credit"):
                grant = names.get(applied.commit_id or "", applied.commit_id or applied.name)
                metronome_by_grant[grant] = metronome_by_grant.get(grant, 0) - applied.total
        stripe_total = period.stripe.credits_applied
        metronome_total = sum(metronome_by_grant.values())
        if moved_at_cutover(period.subscription):
            return self._held_in_stripe(stripe_total, metronome_total, comparison)
        line = LineParity(
            key=CREDITS_KEY,
            stripe_cents=stripe_total,
            metronome_cents=metronome_total,
            within_tolerance=self.tolerances.line_within(stripe_total, metronome_total),
        )
        stripe_by_grant: dict[str, int] | None = None
        if period.stripe.credit_transactions and all(t for t, _ in period.stripe.credit_transactions):
            if self._transactions is None:
                self._transactions = self.stripe.credit_grants_of_transactions(self.customer.stripe_customer_id)
            stripe_by_grant = {}
            for transaction, cents in period.stripe.credit_transactions:
                grant = self._transactions.get(transaction or "", transaction or "")
                stripe_by_grant[grant] = stripe_by_grant.get(grant, 0) + cents
        differs = stripe_total != metronome_total
        if stripe_by_grant is not None and not differs:
            differs = any(
                stripe_by_grant.get(g, 0) != metronome_by_grant.get(g, 0)
                for g in set(stripe_by_grant) | set(metronome_by_grant)
            )
        if not differs:
            return line
        line.within_tolerance = False if stripe_by_grant is not None else line.within_tolerance
        comparison.differences.append(
            self._drift(period, metronome_by_grant, stripe_total, metronome_total)
            or self._grant_drift(period, stripe_by_grant, metronome_by_grant, stripe_total, metronome_total)
            or self._credit_order(stripe_by_grant, metronome_by_grant, stripe_total, metronome_total)
        )
        return line

    def _drift(
        self, period: Period, metronome_by_grant: dict[str, int], stripe_total: int, metronome_total: int
    ) -> Difference | None:
        """Stripe ran out of its grants while their Metronome copies still paid: the copies started the period with
        more. A grant moves at its remaining balance when the contract is made (decisions.md (b)), and Stripe goes on
        drawing it for the period in flight at the parallel-run start, whose usage before the dual write Metronome
        never saw; the settling step at the cutover boundary puts each copy back at Stripe's remainder."""
        if stripe_total >= metronome_total:
            return None
        if self._grants is None:
            self._grants = self.stripe.credit_grants(self.customer.stripe_customer_id)
        moved = {b.name or b.id for b in (self.contract.balances if self.contract else ())}
        grants = [g for g in self._grants if g.id in moved and g.voided_at is None]
        left = sum(g.remaining for g in grants)
        # a final invoice has drawn them: nothing left; a preview has not: it applies all that is left
        if not grants or left != (0 if period.closed_in_stripe else stripe_total):
            return None
        when = "after" if period.closed_in_stripe else "before"
        rows = "; ".join(
            f"{g.id} ({g.category}): {g.remaining} cents left in Stripe {when} this invoice, its Metronome copy drew "
            f"{metronome_by_grant.get(g.id, 0)} cents"
            for g in sorted(grants, key=lambda g: g.id)
        )
        return Difference(
            cause=Cause.BALANCE_DRIFT,
            line_key=CREDITS_KEY,
            cents=stripe_total - metronome_total,
            evidence=f"credits applied: Stripe {stripe_total}, Metronome {metronome_total} cents; Stripe's grants ran "
            f"out in this period ({rows}): their Metronome copies held at least {metronome_total - stripe_total} "
            "cents more at its start. A grant moves at what Stripe has left when the contract is made; Stripe's "
            "invoices for the period in flight at the parallel-run start, or for events only Stripe received, drew "
            "it further",
            suggested_fix=DRIFT_FIX,
        )

    def _grant_drift(
        self,
        period: Period,
        stripe_by_grant: dict[str, int] | None,
        metronome_by_grant: dict[str, int],
        stripe_total: int,
        metronome_total: int,
    ) -> Difference | None:
        """The same drift one grant at a time: both sides draw the grants in the same priority order (no ties), and
        each grant whose Metronome copy paid more than Stripe's grant did ran out in Stripe, so the copy simply held
        more; what it paid beyond, the next grant in order paid less. No question of order: settled at the cutover."""
        if stripe_by_grant is None or not period.closed_in_stripe:
            return None
        if self._grants is None:
            self._grants = self.stripe.credit_grants(self.customer.stripe_customer_id)
        grants = {g.id: g for g in self._grants if g.voided_at is None}
        priorities = {b.name or b.id: b.priority for b in (self.contract.balances if self.contract else ())}
        drawn = sorted(set(stripe_by_grant) | set(metronome_by_grant))
        if not drawn or any(g not in grants or priorities.get(g) is None for g in drawn):
            return None
        by_stripe = sorted(drawn, key=lambda g: grants[g].priority)
        if len({grants[g].priority for g in drawn}) < len(drawn) or len({priorities[g] for g in drawn}) < len(drawn):
            return None  # a tie: which grant pays first is the question (credit_order)
        if by_stripe != sorted(drawn, key=lambda g: priorities[g] or 0.0):
            return None
        over = [g for g in drawn if metronome_by_grant.get(g, 0) > stripe_by_grant.get(g, 0)]
        if not over or any(grants[g].remaining != 0 for g in over):
            return None
        rows = "; ".join(
            f"{g} ({grants[g].category}, priority {grants[g].priority} in Stripe, {priorities[g]} in Metronome): "
            f"Stripe {stripe_by_grant.get(g, 0)}, Metronome {metronome_by_grant.get(g, 0)} cents"
            + (", 0 left in Stripe" if g in over else "")
            for g in by_stripe
        )
        return Difference(
            cause=Cause.BALANCE_DRIFT,
            line_key=CREDITS_KEY,
            cents=stripe_total - metronome_total,
            evidence=f"credits applied: Stripe {stripe_total}, Metronome {metronome_total} cents, drawn in the same "
            f"priority order ({rows}): Stripe used up {', '.join(over)} while its Metronome copy paid more, so the "
            "copy held more at the period's start (a grant moves at what Stripe has left when the contract is made, "
            "and Stripe drew it further before the dual write)",
            suggested_fix=DRIFT_FIX,
        )

    def _held_in_stripe(self, stripe_total: int, metronome_total: int, comparison: _Comparison) -> LineParity:
        """A threshold customer's grants stay in Stripe until its cutover (decisions.md (c)): Stripe's invoice is
        compared before its credits, and Metronome must have drawn none."""
        comparison.excluded_cents -= stripe_total
        line = LineParity(
            key=CREDITS_KEY,
            stripe_cents=stripe_total,
            metronome_cents=metronome_total,
            within_tolerance=metronome_total == 0,
            excluded_reason="threshold billing: the Stripe grants move to Metronome at the cutover (decisions.md "
            "(c)), so the invoices are compared before Stripe's credits",
        )
        if metronome_total:
            comparison.differences.append(
                Difference(
                    cause=Cause.CREDIT_ORDER,
                    line_key=CREDITS_KEY,
                    cents=-metronome_total,
                    evidence=f"a threshold-billing customer's Metronome invoice drew {metronome_total} cents of "
                    "commits or credits during the parallel run; its Stripe grants move only at the cutover",
                    suggested_fix="remove the commits and credits added to its contract before the cutover; the "
                    "threshold cutover moves the remaining balance after Stripe's final invoice",
                )
            )
        return line

    def _credit_order(
        self,
        stripe_by_grant: dict[str, int] | None,
        metronome_by_grant: dict[str, int],
        stripe_total: int,
        metronome_total: int,
    ) -> Difference:
        if self._grants is None:
            self._grants = self.stripe.credit_grants(self.customer.stripe_customer_id)
        grants = {g.id: g for g in self._grants}
        priorities = {b.name or b.id: b.priority for b in (self.contract.balances if self.contract else ())}
        rows = []
        for grant_id in sorted(set(stripe_by_grant or {}) | set(metronome_by_grant)):
            grant = grants.get(grant_id)
            rows.append(
                f"{grant_id} ({grant.category if grant else '?'}, Stripe priority "
                f"{grant.priority if grant else '?'}, Metronome priority {priorities.get(grant_id)}): Stripe "
                f"{(stripe_by_grant or {}).get(grant_id, '?')}, Metronome {metronome_by_grant.get(grant_id, 0)} cents"
            )
        stripe_priorities = [grants[g].priority for g in (stripe_by_grant or {}) if g in grants]
        tie = len(stripe_priorities) != len(set(stripe_priorities)) or (
            len({g.priority for g in self._grants if g.voided_at is None})
            < len([g for g in self._grants if g.voided_at is None])
        )
        evidence = f"credits applied: Stripe {stripe_total}, Metronome {metronome_total} cents; " + "; ".join(rows)
        if tie:
            evidence += (
                "; grants share a priority: Stripe breaks the tie by effective date then creation, Metronome burns "
                "$0-cost-basis credits before paid commits (decisions.md (b))"
            )
        return Difference(
            cause=Cause.CREDIT_ORDER,
            cents=metronome_total - stripe_total,
            evidence=evidence,
            suggested_fix="give the Metronome commits and credits distinct priorities in Stripe's order "
            "(v2.contracts.edit), or approve the customer if the remaining balances are acceptable"
            if tie
            else "compare each commit's and credit's access schedule and applicability with its Stripe grant",
        )

    # -- completeness --------------------------------------------------------------------------------------------------
    def _completeness(self, period: Period) -> list[Difference]:
        found = []
        for row in self.completeness(period.start, period.end):
            if row.status == "match":
                continue
            missing = row.status == "missing"
            found.append(
                Difference(
                    cause=Cause.MISSING_USAGE if missing else Cause.EXTRA_USAGE,
                    line_key=row.meter,
                    evidence=f"dual-write completeness for meter {row.meter} over {row.window_start}..{row.window_end} "
                    f"(late-event window applied): Stripe's meter event summary {row.stripe}, Metronome's "
                    f"usage/groups {row.metronome} (difference {row.difference})",
                    suggested_fix="replay the events Metronome lacks (`billmig usage replay --dlq`; the dead-letter "
                    "queue names each refusal)"
                    if missing
                    else "find the events that reached Metronome only (sent after the cutover instant, or under a "
                    "second transaction id)",
                )
            )
        return found
