"""One batch of queued usage events through the router: parse, map, route, send in the vendors' batch sizes.

Every message ends in exactly one of three places: delivered (deleted from the queue), dead-lettered with its
reason (a poison event, an unmapped one, a customer nobody knows, a vendor's refusal), or left for SQS to deliver
again (a throttle or an outage on either side; the vendor that already took it dedupes the resend by its id).
Before a message is let go, the event and the vendors it was routed to are in the journal
(`billmig.usage.journal`), one page per customer: what a later backfill or rollback re-sends from.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from billmig.errors import TransientError
from billmig.idempotency_keys import usage_event_id
from billmig.usage.errors import InvalidUsageEvent
from billmig.usage.events import UsageEvent, parse_json_event
from billmig.usage.journal import JournalEntry, JournalPage, UsageJournal, page_of
from billmig.usage.mapping import MeterRule, UsageRouterConfig
from billmig.usage.ports import (
    DeadLetter,
    DeadLetterSink,
    MetronomeEvent,
    MetronomeIngestSink,
    Refusal,
    StripeMeterEvent,
    StripeMeterSink,
)
from billmig.usage.routing import Destination, RouteBook


@dataclass(frozen=True)
class QueuedEvent:
    message_id: str
    body: str


@dataclass
class RouterResult:
    retry: set[str] = field(default_factory=set)  # message ids SQS must deliver again
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)  # events taken, per vendor


class UnroutableEvent(Exception):
    """This event can never be delivered as it is (the reason is the message)."""


@dataclass
class _Plan:
    stripe: list[tuple[str, StripeMeterEvent]] = field(default_factory=list)
    metronome: list[tuple[str, MetronomeEvent]] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)
    retry: set[str] = field(default_factory=set)
    routed: dict[str, tuple[UsageEvent, str | None]] = field(default_factory=dict)  # message -> event, Stripe id
    looked_up: set[str] = field(default_factory=set)  # customers routed in this batch (a cached miss rechecked once)


JOURNAL_CONCURRENCY = 100  # PutObjects at once: one per customer in the batch, up to its 100 messages, in one wave
ROUTER_ORIGIN = "batch"  # journal page ids of the router's pages


def stripe_event(event: UsageEvent, rule: MeterRule, stripe_customer_id: str) -> StripeMeterEvent:
    if rule.stripe_value_property is None:
        value = "1"
    elif rule.stripe_value_property in event.properties:
        value = str(event.properties[rule.stripe_value_property])
    else:
        raise UnroutableEvent(f"properties.{rule.stripe_value_property}: missing (the Stripe meter's value)")
    return StripeMeterEvent(
        identifier=usage_event_id(event.customer_id, event.event_id),
        event_name=rule.stripe_event_name,
        timestamp=event.unix_seconds,
        payload={rule.stripe_customer_key: stripe_customer_id, rule.stripe_value_key: value},
    )


def metronome_event(event: UsageEvent, rule: MeterRule) -> MetronomeEvent:
    return MetronomeEvent(
        transaction_id=usage_event_id(event.customer_id, event.event_id),
        customer_id=event.customer_id,
        event_type=rule.metronome_event_type,
        timestamp=event.timestamp.isoformat().replace("+00:00", "Z"),
        properties=dict(event.properties),
    )


class UsageRouter:
    def __init__(
        self,
        config: UsageRouterConfig,
        routes: RouteBook,
        stripe: StripeMeterSink,
        metronome: MetronomeIngestSink,
        dead_letters: DeadLetterSink,
        journal: UsageJournal,
    ) -> None:
        self.config = config
        self.routes = routes
        self.stripe = stripe
        self.metronome = metronome
        self.dead_letters = dead_letters
        self.journal = journal
        # Kept for the router's life (a warm container's), rather than threads started for every batch.
        self._pool = ThreadPoolExecutor(max_workers=2 + JOURNAL_CONCURRENCY, thread_name_prefix="router")

    def route(self, messages: list[QueuedEvent]) -> RouterResult:
        plan = _Plan()
        for message in messages:
            try:
                self._plan(message, plan)
            except (InvalidUsageEvent, UnroutableEvent) as exc:
                plan.refusals.setdefault(message.message_id, []).append(str(exc))
            except TransientError:
                plan.retry.add(message.message_id)
        # Both vendors and the journal at once: the journal's round trips overlap the vendors' instead of following.
        stripe_sent = self._pool.submit(self.stripe.send, [e for _, e in plan.stripe])
        metronome_sent = self._pool.submit(self.metronome.ingest, [e for _, e in plan.metronome])
        journaled = [(self._pool.submit(self._record, page), ids) for page, ids in self._pages(plan)]
        refused = {Destination.STRIPE: stripe_sent.result(), Destination.METRONOME: metronome_sent.result()}
        result = RouterResult(retry=set(plan.retry))
        for vendor, sent in ((Destination.STRIPE, plan.stripe), (Destination.METRONOME, plan.metronome)):
            for index, (message_id, _) in enumerate(sent):
                refusal: Refusal | None = refused[vendor].get(index)
                if refusal is None:
                    result.sent[vendor.value] += 1
                elif refusal.transient:
                    result.retry.add(message_id)
                else:
                    plan.refusals.setdefault(message_id, []).append(f"{vendor.value}: {refusal.reason}")
        for written, message_ids in journaled:
            if not written.result():
                result.retry |= message_ids  # delivered again (the vendors dedupe), so nothing leaves unjournaled
        bodies = {m.message_id: m.body for m in messages}
        letters = [
            DeadLetter(message_id, bodies[message_id], "; ".join(reasons))
            for message_id, reasons in plan.refusals.items()
            if message_id not in result.retry  # a transient failure elsewhere: the whole event comes round again
        ]
        result.retry |= self.dead_letters.dead_letter(letters)
        result.dead_lettered = [letter for letter in letters if letter.message_id not in result.retry]
        return result

    def close(self) -> None:
        """Let the pool's threads go once no batch uses this router (its config was replaced)."""
        self._pool.shutdown(wait=False)

    @staticmethod
    def _pages(plan: _Plan) -> list[tuple[JournalPage, set[str]]]:
        """One journal page per customer: each routed event with the vendors it was routed to. SQS then delivers
        it to them, or dead-letters it with the reason, so a resend never needs to send it to those again."""
        routed_to: dict[str, set[Destination]] = {}
        for vendor, sent in ((Destination.STRIPE, plan.stripe), (Destination.METRONOME, plan.metronome)):
            for message_id, _ in sent:
                routed_to.setdefault(message_id, set()).add(vendor)
        by_customer: dict[str, list[tuple[str, JournalEntry]]] = {}
        for message_id, vendors in routed_to.items():
            event, stripe_id = plan.routed[message_id]
            entry = JournalEntry(event, frozenset(vendors), stripe_id)
            by_customer.setdefault(event.customer_id, []).append((message_id, entry))
        pages = []
        for internal_id, found in by_customer.items():
            page = page_of(ROUTER_ORIGIN, internal_id, [entry for _, entry in found])
            if page is not None:
                pages.append((page, {message_id for message_id, _ in found}))
        return pages

    def _record(self, page: JournalPage) -> bool:
        try:
            self.journal.record(page)
        except TransientError:
            return False
        return True

    def _plan(self, message: QueuedEvent, plan: _Plan) -> None:
        event = parse_json_event(message.body, f"message {message.message_id}")
        rule = self.config.rule_for(event)
        if rule is None:
            raise UnroutableEvent(f"event_name {event.event_name!r} with these properties matches no router rule")
        # a miss cached by an earlier batch may predate the customer (a replay after the fix): asked again once a batch
        recheck = event.customer_id not in plan.looked_up
        plan.looked_up.add(event.customer_id)
        route = self.routes.route(event.customer_id, recheck_miss=recheck)
        if route is None:
            raise UnroutableEvent(f"customer_id {event.customer_id!r}: unknown (no migration run, no Stripe customer)")
        destinations = route.destinations(event.timestamp)
        plan.routed[message.message_id] = (event, route.stripe_customer_id)
        if Destination.STRIPE in destinations:
            if route.stripe_customer_id is None:
                raise UnroutableEvent(f"customer_id {event.customer_id!r}: no Stripe customer")
            plan.stripe.append((message.message_id, stripe_event(event, rule, route.stripe_customer_id)))
        if Destination.METRONOME in destinations:
            plan.metronome.append((message.message_id, metronome_event(event, rule)))
