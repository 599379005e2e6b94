"""The contract a customer gets, computed from its snapshot and the config alone (decisions.md (a) and (b)).

Pure, so the plan predicts exactly what the contract step writes. Dates: `starting_at` = the Stripe subscription's
start floored to 00:00Z; invoices from the parallel-run start; statements on the 1st when Stripe bills on the 1st at
00:00 UTC, else anchored on Stripe's billing cycle anchor, so each Metronome period covers the days of the Stripe
period it is compared with. Grants move at their remaining balance: paid -> PREPAID commit whose invoice schedule
is not invoiced, promotional -> credit; priority + 1; expiry rounded up to the hour; applicability kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billmig.metronome.resolution import ResolvedConfig
from billmig.metronome.snapshot import CustomerSnapshot
from billmig.stripe_source.views import StripeCreditGrant, StripeSubscription

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
"""`ending_before` of a grant that never expires (the contract has no end)."""
_FREQUENCIES = {"month": "MONTHLY", "year": "ANNUAL", "week": "WEEKLY"}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def ceil_hour(moment: datetime) -> datetime:
    floored = moment.replace(minute=0, second=0, microsecond=0)
    return floored if floored == moment else floored + timedelta(hours=1)


def contract_start(subscription: StripeSubscription) -> datetime:
    return _utc(subscription.start_date).replace(hour=0, minute=0, second=0, microsecond=0)


def statement_schedule(subscription: StripeSubscription, config: ResolvedConfig) -> dict[str, Any]:
    intervals = {i.interval for i in subscription.items if i.interval}
    frequency = (
        _FREQUENCIES.get(next(iter(sorted(intervals)), "month"), "MONTHLY") if len(intervals) <= 1 else "MONTHLY"
    )
    anchor = _utc(subscription.billing_cycle_anchor or subscription.start_date)
    schedule: dict[str, Any] = {"frequency": frequency}
    if frequency == "MONTHLY" and (anchor.day, anchor.hour, anchor.minute, anchor.second) == (1, 0, 0, 0):
        schedule["day"] = "FIRST_OF_MONTH"
    else:
        schedule["day"] = "CUSTOM_DATE"
        schedule["billing_anchor_date"] = rfc3339(anchor)
    schedule["invoice_generation_starting_at"] = rfc3339(invoices_from(config))
    return schedule


def invoices_from(config: ResolvedConfig) -> datetime:
    """The parallel-run start (decisions.md (a)); a hard cutover has no parallel run: Metronome invoices from the
    cutover's period boundary on, so no period before it is billed by both."""
    return config.cutover_at if config.strategy == "hard" else config.parallel_run_start


def moved_at_cutover(subscription: StripeSubscription) -> bool:
    """Threshold-billing customers keep their Stripe grants until the cutover (decisions.md (c)): their balance is
    moved after Stripe's final invoice, so the contract is made without it."""
    return subscription.billing_threshold is not None


@dataclass(frozen=True)
class GrantMove:
    """One Stripe grant and what it becomes (`target` commit or credit), or why it stays (`skipped`)."""

    grant_id: str
    category: str
    remaining: int
    target: str | None  # "commit" | "credit" | None when skipped
    priority: int
    starting_at: datetime | None
    ending_before: datetime | None
    applicable_product_ids: tuple[str, ...] = ()
    specifiers: tuple[dict[str, Any], ...] = ()
    skipped: str | None = None

    def describe(self, *, at_cutover: bool = False) -> dict[str, Any]:
        """`at_cutover`: a threshold customer's grant, moved after Stripe's final invoice (decisions.md (c))."""
        target = self.target and (f"{self.target} at cutover" if at_cutover else self.target)
        return {
            "grant": self.grant_id,
            "remaining": self.remaining,
            "target": target or f"skipped: {self.skipped}",
            "priority": self.priority,
            "expiry": rfc3339(self.ending_before) if self.ending_before else None,
            "applicability": list(self.applicable_product_ids) or list(self.specifiers) or "all products",
        }


def _applicability(
    grant: StripeCreditGrant, subscription: StripeSubscription, config: ResolvedConfig
) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    if grant.price_ids:
        mappings = [m for m in (config.mapping_for(p, None) for p in grant.price_ids) if m and m.product_id]
        # a lookup-key mapping: find the item with this price id and match by its lookup key
        for item in subscription.items:
            if item.price_id in grant.price_ids:
                mapping = config.mapping_for(item.price_id, item.lookup_key)
                if mapping and mapping.product_id and mapping not in mappings:
                    mappings.append(mapping)
        if any(m.pricing_group_values for m in mappings):
            specifiers = []
            for m in mappings:
                spec: dict[str, Any] = {"product_id": m.product_id}
                if m.pricing_group_values:
                    spec["pricing_group_values"] = dict(m.pricing_group_values)
                if spec not in specifiers:
                    specifiers.append(spec)
            return (), tuple(specifiers)
        return tuple(sorted({m.product_id for m in mappings if m.product_id})), ()
    products = set()
    for item in subscription.items:
        mapping = config.mapping_for(item.price_id, item.lookup_key)
        if item.meter_id and mapping and mapping.product_id:
            products.add(mapping.product_id)
    return tuple(sorted(products)), ()


def grant_moves(
    snapshot: CustomerSnapshot, subscription: StripeSubscription, config: ResolvedConfig
) -> list[GrantMove]:
    moves = []
    taken = snapshot.taken_at
    for grant in sorted(snapshot.grants, key=lambda g: g.id):
        start = max(
            config.parallel_run_start,
            ceil_hour(_utc(grant.effective_at)) if grant.effective_at else config.parallel_run_start,
        )
        end = ceil_hour(_utc(grant.expires_at)) if grant.expires_at else FAR_FUTURE
        skipped = None
        if grant.voided_at is not None:
            skipped = "voided"
        elif grant.expires_at is not None and _utc(grant.expires_at) <= taken:
            skipped = "expired"
        elif grant.remaining <= 0:
            skipped = "no balance left"
        elif grant.currency.lower() != "usd":
            skipped = f"{grant.currency} balance (only USD cents map onto the default credit type)"
        elif end <= start:
            skipped = "expires before the parallel run starts"
        products, specifiers = _applicability(grant, subscription, config)
        if skipped is None and grant.price_ids and not (products or specifiers):
            skipped = "applies only to prices that are not migrated"
        moves.append(
            GrantMove(
                grant_id=grant.id,
                category=grant.category,
                remaining=grant.remaining,
                target=None if skipped else ("commit" if grant.category == "paid" else "credit"),
                priority=grant.priority + 1,
                starting_at=None if skipped else start,
                ending_before=None if skipped else end,
                applicable_product_ids=products,
                specifiers=specifiers,
                skipped=skipped,
            )
        )
    return moves


def balance_terms(move: GrantMove, config: ResolvedConfig) -> dict[str, Any]:
    assert move.starting_at is not None and move.ending_before is not None
    terms: dict[str, Any] = {
        "product_id": config.commit_product_id if move.target == "commit" else config.credit_product_id,
        "name": move.grant_id,
        "description": f"Stripe {move.category} credit grant {move.grant_id}, remaining balance",
        "priority": move.priority,
        "access_schedule": {
            "schedule_items": [
                {
                    "amount": move.remaining,
                    "starting_at": rfc3339(move.starting_at),
                    "ending_before": rfc3339(move.ending_before),
                }
            ]
        },
    }
    if move.applicable_product_ids:
        terms["applicable_product_ids"] = list(move.applicable_product_ids)
    if move.specifiers:
        terms["specifiers"] = [dict(s) for s in move.specifiers]
    if move.target == "commit":
        terms["type"] = "PREPAID"
        terms["invoice_schedule"] = {
            "schedule_items": [{"timestamp": rfc3339(move.starting_at), "amount": move.remaining}],
            "do_not_invoice": True,
        }
    return terms


def live_subscription(snapshot: CustomerSnapshot) -> StripeSubscription:
    (subscription,) = snapshot.live_subscriptions
    return subscription


def contract_terms(
    snapshot: CustomerSnapshot,
    config: ResolvedConfig,
    *,
    customer_id: str,
    billing_provider_configuration_id: str,
    uniqueness_key: str,
) -> dict[str, Any]:
    """`v1.contracts.create`'s parameters."""
    subscription = live_subscription(snapshot)
    moves = (
        [] if moved_at_cutover(subscription) else [m for m in grant_moves(snapshot, subscription, config) if m.target]
    )
    return {
        "customer_id": customer_id,
        "starting_at": rfc3339(contract_start(subscription)),
        "rate_card_id": config.rate_card_id,
        "name": f"Migrated from Stripe {subscription.id}",
        "usage_statement_schedule": statement_schedule(subscription, config),
        "billing_provider_configuration": {"billing_provider_configuration_id": billing_provider_configuration_id},
        "commits": [balance_terms(m, config) for m in moves if m.target == "commit"],
        "credits": [balance_terms(m, config) for m in moves if m.target == "credit"],
        "uniqueness_key": uniqueness_key,
    }
