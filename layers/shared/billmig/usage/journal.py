"""The journal of routed usage events: each source event, with the vendors it was routed to, kept so that events
can be sent again later to the vendor that did not get them (the parallel run's backfill, a rollback's re-send to
Stripe).

The router writes one page per customer and SQS batch (one PutObject each); a resend writes one page per customer
and round of calls. A page is filed under the days of its first and last event, so a window reads only the pages
that overlap it. A page's id is a digest of the events on it, so a redelivered batch (or a repeated resend)
overwrites its own page instead of adding one. An event may still sit on several pages (SQS redelivers a message
in another batch): reading merges them by event id, the vendors of all its pages together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from billmig.usage.events import UsageEvent
from billmig.usage.routing import Destination

PAGE_ID_DIGEST = 24


@dataclass(frozen=True)
class JournalEntry:
    event: UsageEvent
    # The router: the vendors it routed the event to (SQS then delivers it there or dead-letters it with the
    # reason); a resend: the vendor that took it.
    sent_to: frozenset[Destination]
    stripe_customer_id: str | None = None  # as the router resolved it: what a resend to Stripe sends for
    refused: dict[str, str] = field(default_factory=dict)  # vendor -> why it refused a resend for good

    @property
    def day(self) -> date:
        return self.event.timestamp.date()

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event.model_dump(mode="json"),
            "sent_to": sorted(d.value for d in self.sent_to),
            "stripe_customer_id": self.stripe_customer_id,
            "refused": dict(sorted(self.refused.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        return cls(
            event=UsageEvent.model_validate(data["event"]),
            sent_to=frozenset(Destination(d) for d in data["sent_to"]),
            stripe_customer_id=data.get("stripe_customer_id"),
            refused=dict(data.get("refused") or {}),
        )


@dataclass(frozen=True)
class JournalPage:
    """One object of the journal: one customer's events from one batch (or one round of a resend)."""

    internal_id: str
    page_id: str
    entries: tuple[JournalEntry, ...]

    @property
    def first_day(self) -> date:
        return min(entry.day for entry in self.entries)

    @property
    def last_day(self) -> date:
        return max(entry.day for entry in self.entries)

    def body(self) -> str:
        return "".join(json.dumps(entry.as_json(), separators=(",", ":")) + "\n" for entry in self.entries)


class UsageJournal(Protocol):
    def record(self, page: JournalPage) -> None:
        """Write the page (overwriting a page of the same id); raises a `TransientError` if it could not."""
        ...

    def read(self, internal_id: str, since: datetime | None, until: datetime | None) -> Iterable[JournalEntry]:
        """Every entry of the customer's pages that overlap the window's days (the caller filters by instant)."""
        ...


def page_of(origin: str, internal_id: str, entries: Iterable[JournalEntry]) -> JournalPage | None:
    """One customer's entries as one page, its id `origin` plus a digest of its event ids (None when empty)."""
    found = sorted(entries, key=lambda e: e.event.event_id)
    if not found:
        return None
    digest = hashlib.sha256("\x1f".join(e.event.event_id for e in found).encode()).hexdigest()[:PAGE_ID_DIGEST]
    return JournalPage(internal_id, f"{origin}-{digest}", tuple(found))


def merged(entries: Iterable[JournalEntry]) -> dict[str, JournalEntry]:
    """One entry per event id: the vendors of every page it is on; a refusal stands only while that vendor lacks it."""
    found: dict[str, JournalEntry] = {}
    for entry in entries:
        earlier = found.get(entry.event.event_id)
        if earlier is None:
            found[entry.event.event_id] = entry
            continue
        sent_to = earlier.sent_to | entry.sent_to
        refused = {k: v for k, v in {**earlier.refused, **entry.refused}.items() if Destination(k) not in sent_to}
        found[entry.event.event_id] = JournalEntry(
            earlier.event, sent_to, earlier.stripe_customer_id or entry.stripe_customer_id, refused
        )
    return found
