"""The demo's month of usage: generated for the migrated customers, in the router's one event shape, and fed to the
usage queue week by week as the world clock walks through the month.

Stripe invoices a period the moment its test clock passes the period's end, so an event can only reach a period that
has not closed yet: the clock stops just before each week's end, that week's events are queued and routed, then it
moves on. A customer whose own Stripe period ends inside a week gets no events in that week before its period end
(they would reach Stripe after it invoiced that period, as real late usage would).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from billmig.usage.events import PropertyValue, UsageEvent

WEEK = timedelta(days=7)
EVENTS_PER_DAY = 2
REGIONS = ("us-east", "eu-west")


@dataclass(frozen=True)
class Streamed:
    """One migrated customer, as the generator needs it."""

    internal_id: str
    period_end: datetime | None  # its current Stripe period's end, when that falls inside the month


def steps(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Week-long windows from `start`, the last one ending at `end`."""
    windows = []
    at = start
    while at < end:
        windows.append((at, min(at + WEEK, end)))
        at += WEEK
    return windows


def week_of_usage(customers: list[Streamed], start: datetime, end: datetime, *, seed: int) -> list[UsageEvent]:
    """`EVENTS_PER_DAY` events a day per customer at distinct whole seconds in [start, end): API calls, compute
    minutes and storage readings in two regions, each customer's own period end respected."""
    events = []
    for customer in customers:
        begin = start
        if customer.period_end is not None and start < customer.period_end <= end:
            begin = customer.period_end
        seconds = int((end - begin).total_seconds())
        if seconds <= 0:
            continue
        rng = random.Random(f"{seed}:{customer.internal_id}:{start.isoformat()}")
        count = min(seconds, max(1, EVENTS_PER_DAY * seconds // 86400))
        for n, offset in enumerate(sorted(rng.sample(range(seconds), count))):
            kind = rng.choice(("api_call", "api_call", "compute_minutes", "storage_gb"))
            properties: dict[str, PropertyValue] = {}
            if kind == "compute_minutes":
                properties = {"minutes": rng.randint(1, 90)}
            elif kind == "storage_gb":
                properties = {"gb": rng.randint(1, 500), "region": rng.choice(REGIONS)}
            events.append(
                UsageEvent(
                    event_id=f"demo-{start:%Y%m%d}-{n}",
                    customer_id=customer.internal_id,
                    event_name=kind,
                    timestamp=begin + timedelta(seconds=offset),
                    properties=properties,
                )
            )
    return events
