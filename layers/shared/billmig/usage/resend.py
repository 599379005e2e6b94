"""Send again, from the journal, the routed events one vendor did not get: the parallel run's backfill (events that
went to Stripe only before the customer's phase was written, sent to Metronome) and a rollback's re-send (events
that went to Metronome only, sent to Stripe).

The events go through the router's own mapping and sinks with the router's deterministic ids (Metronome
`transaction_id`, Stripe `identifier`), so a vendor that already has an event counts it once, and every event taken
is journaled with its new vendor at once: a second resend finds nothing to send. A vendor's refusal for good (Stripe
takes no event older than 35 days, a meter gone, an event no rule maps any more) is dead-lettered with its reason and
journaled as refused, so it is reported, never dropped, and not dead-lettered twice. A throttle or an outage leaves
the rest for a retry (`VendorUnavailable`), the events taken so far already journaled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from billmig.bulk import chunked
from billmig.errors import VendorUnavailable
from billmig.idempotency_keys import usage_event_id
from billmig.usage.journal import JournalEntry, UsageJournal, merged, page_of
from billmig.usage.mapping import MeterRule, UsageRouterConfig
from billmig.usage.ports import DeadLetter, DeadLetterSink, MetronomeIngestSink, Refusal, StripeMeterSink
from billmig.usage.router import UnroutableEvent, metronome_event, stripe_event
from billmig.usage.routing import Destination

_V = TypeVar("_V")
RESEND_CHUNK = 1000  # events per round of vendor calls; each round is journaled before the next


@dataclass(frozen=True)
class ResendPorts:
    """Only the sink of the destination is needed (a backfill to Metronome holds no Stripe key); the router config
    is read only when there is something to send (a migration that never routed usage needs none)."""

    config: Callable[[], UsageRouterConfig]
    journal: UsageJournal
    dead_letters: DeadLetterSink
    stripe: StripeMeterSink | None = None
    metronome: MetronomeIngestSink | None = None


@dataclass
class ResendResult:
    internal_id: str
    destination: str
    considered: int = 0  # journaled events in the window
    already: int = 0  # the destination had them
    sent: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # event id -> reason (dead-lettered now)
    refused_before: int = 0  # refused by the destination on an earlier resend (already dead-lettered)

    @property
    def outcome(self) -> str:
        """What the step records: never plain success when something was refused."""
        done = f"{self.sent} sent to {self.destination}, {self.already} already there"
        failed = len(self.refused) + self.refused_before
        if failed:
            return f"completed with errors: {done}, {failed} refused (dead-lettered with the reason)"
        return done

    def as_json(self) -> dict[str, object]:
        return {
            "internal_id": self.internal_id,
            "destination": self.destination,
            "considered": self.considered,
            "already": self.already,
            "sent": self.sent,
            "refused": dict(self.refused),
            "refused_before": self.refused_before,
        }


def _in_window(entry: JournalEntry, since: datetime | None, until: datetime | None) -> bool:
    at = entry.event.timestamp
    return (since is None or at >= since) and (until is None or at < until)


def resend(
    ports: ResendPorts,
    internal_id: str,
    destination: Destination,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ResendResult:
    """Send to `destination` every journaled event of `internal_id` timed in [since, until) that it did not get.

    Idempotent: run twice, the second run sends nothing (and a vendor that saw an event already dedupes it by id).
    Raises `VendorUnavailable` when a vendor or the journal failed transiently (what was taken is journaled).
    """
    result = ResendResult(internal_id, destination.value)
    send = _sender(ports, destination)
    due: list[JournalEntry] = []
    for entry in merged(ports.journal.read(internal_id, since, until)).values():
        if not _in_window(entry, since, until):
            continue
        result.considered += 1
        if destination in entry.sent_to:
            result.already += 1
        elif destination.value in entry.refused:
            result.refused_before += 1
        else:
            due.append(entry)
    due.sort(key=lambda e: (e.event.timestamp, e.event.event_id))
    left: list[str] = []
    config = ports.config() if due else None
    for part in chunked(due, RESEND_CHUNK):
        assert config is not None
        refusals = send(config, part)
        taken, refused = [], []
        for index, entry in enumerate(part):
            refusal = refusals.get(index)
            if refusal is None:
                taken.append(JournalEntry(entry.event, entry.sent_to | {destination}, entry.stripe_customer_id))
            elif refusal.transient:
                left.append(refusal.reason)
            else:
                reasons = {**entry.refused, destination.value: refusal.reason}
                refused.append(JournalEntry(entry.event, entry.sent_to, entry.stripe_customer_id, reasons))
        _dead_letter(ports.dead_letters, destination, refused)
        page = page_of(f"resend-{destination.value}", internal_id, taken + refused)
        if page is not None:
            ports.journal.record(page)
        result.sent += len(taken)
        result.refused.update({e.event.event_id: e.refused[destination.value] for e in refused})
    if left:
        raise VendorUnavailable(
            f"resend of {internal_id} to {destination.value}: {len(left)} of {len(due)} events not taken yet "
            f"({left[0]}); those taken are journaled, a retry sends the rest"
        )
    return result


Sender = Callable[[UsageRouterConfig, list[JournalEntry]], dict[int, Refusal]]


def _sender(ports: ResendPorts, destination: Destination) -> Sender:
    """The destination's sink fed the router's own vendor events; an event that cannot be mapped is refused."""

    if destination is Destination.STRIPE:
        stripe = ports.stripe
        if stripe is None:
            raise ValueError("a resend to Stripe needs the Stripe sink")

        def to_stripe(config: UsageRouterConfig, entries: list[JournalEntry]) -> dict[int, Refusal]:
            return _mapped(config, entries, lambda e, rule: stripe_event(e.event, rule, _stripe_id(e)), stripe.send)

        return to_stripe
    metronome = ports.metronome
    if metronome is None:
        raise ValueError("a resend to Metronome needs the Metronome sink")

    def to_metronome(config: UsageRouterConfig, entries: list[JournalEntry]) -> dict[int, Refusal]:
        return _mapped(config, entries, lambda e, rule: metronome_event(e.event, rule), metronome.ingest)

    return to_metronome


def _stripe_id(entry: JournalEntry) -> str:
    if entry.stripe_customer_id is None:
        raise UnroutableEvent(f"customer_id {entry.event.customer_id!r}: no Stripe customer was known when routed")
    return entry.stripe_customer_id


def _mapped(
    config: UsageRouterConfig,
    entries: list[JournalEntry],
    build: Callable[[JournalEntry, MeterRule], _V],
    deliver: Callable[[list[_V]], dict[int, Refusal]],
) -> dict[int, Refusal]:
    refused: dict[int, Refusal] = {}
    ready: list[tuple[int, _V]] = []
    for index, entry in enumerate(entries):
        rule = config.rule_for(entry.event)
        if rule is None:
            refused[index] = Refusal(f"event_name {entry.event.event_name!r} matches no router rule", False)
            continue
        try:
            ready.append((index, build(entry, rule)))
        except UnroutableEvent as exc:
            refused[index] = Refusal(str(exc), False)
    answers = deliver([event for _, event in ready]) if ready else {}
    refused.update({ready[i][0]: refusal for i, refusal in answers.items()})
    return refused


def _dead_letter(sink: DeadLetterSink, destination: Destination, refused: list[JournalEntry]) -> None:
    letters = [
        DeadLetter(
            f"resend-{usage_event_id(e.event.customer_id, e.event.event_id)}",
            json.dumps(e.event.model_dump(mode="json")),
            f"resend to {destination.value}: {e.refused[destination.value]}",
        )
        for e in refused
    ]
    if letters and sink.dead_letter(letters):
        raise VendorUnavailable(f"resend to {destination.value}: dead-letter queue unavailable; a retry writes them")
