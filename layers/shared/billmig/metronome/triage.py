"""Triage: which bucket a customer is in, and whether it can migrate now.

A customer can be in several buckets; its bucket is the first that applies in `Bucket`'s order, so a blocking reason
always shows before a merely notable one. Blocked: past due (settle in Stripe first), trialing (the trial's end is
Stripe's to bill), cancelling at period end (leaving), an unmapped price (usage with no Metronome product), no
internal id (no ingest alias), no single live subscription. Threshold billing and anniversary periods migrate (their
cutover and statement schedule handle them); "already or partly migrated" resumes what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from billmig.metronome.resolution import ResolvedConfig
from billmig.metronome.snapshot import CustomerSnapshot


class Bucket(StrEnum):
    NO_INTERNAL_ID = "no internal id"
    NO_LIVE_SUBSCRIPTION = "no live subscription"
    UNMAPPED_PRICE = "unmapped price"
    PAST_DUE = "past_due"
    TRIALING = "trialing"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    MIGRATED = "already or partly migrated"
    THRESHOLD_BILLING = "threshold billing"
    ANNIVERSARY_BILLING = "anniversary billing period"
    READY = "ready"


BLOCKING = frozenset(
    {
        Bucket.NO_INTERNAL_ID,
        Bucket.NO_LIVE_SUBSCRIPTION,
        Bucket.UNMAPPED_PRICE,
        Bucket.PAST_DUE,
        Bucket.TRIALING,
        Bucket.CANCEL_AT_PERIOD_END,
    }
)
_ORDER = list(Bucket)


@dataclass(frozen=True)
class Triage:
    buckets: tuple[Bucket, ...]
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bucket(self) -> Bucket:
        return self.buckets[0]

    @property
    def can_migrate(self) -> bool:
        return not any(b in BLOCKING for b in self.buckets)


def anniversary(anchor: int) -> bool:
    """Stripe bills on some other instant than the 1st at 00:00 UTC."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(anchor, UTC)
    return (moment.day, moment.hour, moment.minute, moment.second) != (1, 0, 0, 0)


def triage(snapshot: CustomerSnapshot, config: ResolvedConfig, *, in_metronome: bool = False) -> Triage:
    """`in_metronome`: the plan found a Metronome customer by this customer's alias."""
    found: dict[Bucket, str] = {}
    customer = snapshot.customer
    alias = customer.metadata.get(config.internal_id_metadata_key, "").strip()
    if not alias:
        found[Bucket.NO_INTERNAL_ID] = f"no metadata[{config.internal_id_metadata_key!r}] on the Stripe customer"
    live = snapshot.live_subscriptions
    if len(live) != 1:
        found[Bucket.NO_LIVE_SUBSCRIPTION] = f"{len(live)} live subscriptions (exactly one migrates)"
    for subscription in live:
        unmapped = [
            i.lookup_key or i.price_id
            for i in subscription.items
            if config.mapping_for(i.price_id, i.lookup_key) is None
        ]
        if unmapped:
            found[Bucket.UNMAPPED_PRICE] = f"{subscription.id}: no mapping for {', '.join(unmapped)}"
        if subscription.status == "past_due":
            found[Bucket.PAST_DUE] = f"{subscription.id} is past due"
        if subscription.status == "trialing":
            found[Bucket.TRIALING] = f"{subscription.id} is trialing until {subscription.trial_end}"
        if subscription.cancel_at_period_end or subscription.cancel_at is not None:
            found[Bucket.CANCEL_AT_PERIOD_END] = f"{subscription.id} is set to cancel"
        if subscription.billing_threshold is not None:
            found[Bucket.THRESHOLD_BILLING] = f"{subscription.id} invoices at {subscription.billing_threshold} cents"
        anchor = subscription.billing_cycle_anchor or subscription.start_date
        if anniversary(anchor):
            found[Bucket.ANNIVERSARY_BILLING] = f"{subscription.id} bills on its anchor ({anchor}), not the 1st"
    if in_metronome:
        found[Bucket.MIGRATED] = f"a Metronome customer has the alias {alias!r}"
    buckets = sorted(found, key=_ORDER.index) or [Bucket.READY]
    return Triage(buckets=tuple(buckets), reasons=tuple(found[b] for b in buckets if b in found))
