"""What tests share besides fixtures: the repository root and polling with a deadline.

A module of its own (not `conftest`): several folders have a `conftest.py`, so `from suite import` can find the
wrong one, depending on which the worker loaded first.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def until(predicate: Any, *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail (not hang) after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def metronome_receipts(metronome: Any, transaction_ids: list[str]) -> Counter[tuple[str, bool]]:
    """(transaction id, is_duplicate) of every receipt Metronome's `events/search` shows, through the SDK: an event
    counted once has one `False` receipt; a resend Metronome ignored adds a `True` one."""
    found: Counter[tuple[str, bool]] = Counter()
    for start in range(0, len(transaction_ids), 100):
        for item in metronome.v1.usage.search(transaction_ids=transaction_ids[start : start + 100]):
            found[(item.transaction_id, bool(item.is_duplicate))] += 1
    return found


def stripe_stream_identifiers(stripe_url: str) -> Counter[str]:
    """How many times each identifier was in a meter event stream request the Stripe emulator accepted (202, not an
    injected fault), from its request log (`/_emulator/requests`): Stripe's SDK has no per-event read, only
    summaries. A redelivered batch repeats identifiers here; Stripe dedupes them on `identifier`."""
    import httpx

    found: Counter[str] = Counter()
    for entry in httpx.get(stripe_url + "/_emulator/requests", timeout=60).json():
        if entry["path"] == "/v2/billing/meter_event_stream" and entry["status"] == 202 and not entry["injected"]:
            found.update(event["identifier"] for event in json.loads(entry["body"])["events"])
    return found


def credit_grant(grant_id: str, category: Any, *, remaining: int, priority: int, expires_at: int | None = None) -> Any:
    """A Stripe credit grant of $100.00 on every metered price, as `StripeSource.credit_grants` gives it."""
    from billmig.stripe_source.views import StripeCreditGrant

    return StripeCreditGrant(
        id=grant_id,
        name=None,
        category=category,
        amount=10_000,
        remaining=remaining,
        currency="usd",
        priority=priority,
        effective_at=None,
        expires_at=expires_at,
        voided_at=None,
        price_type="metered",
    )
