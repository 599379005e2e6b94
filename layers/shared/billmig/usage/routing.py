"""Where one event goes: decided by its customer's phase and by the event's own timestamp.

Not yet migrating: Stripe only. From the parallel run on, an event timed before the customer's cutover instant goes
to both (Stripe keeps invoicing; Metronome's invoices are unbillable, for parity), and one timed at or after it goes
to Metronome only. The event's timestamp decides, not its arrival: a late event for the last Stripe period still
reaches Stripe after the cutover. Phases change rarely, so routes are read through a short cache. Once a batch is
cleaned up (`billmig.metronome.cleanup`: its customers' phase `cleaned_up` and the batch in the Stripe-writes-off
flag), its customers' events go to Metronome only, whatever their timestamp: the dual-write path is decommissioned,
and the router says so (a log line and a `StripeWritesDecommissioned` metric per route it reads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from billmig.observability import logger, metrics

PARALLEL_RUN = "parallel_run"  # written by billmig.metronome.parallel_run
CUT_OVER = "cut_over"
CLEANED_UP = "cleaned_up"
HELD_BACK = "held_back"  # the parity gate refused the cutover: still dual-write
ROLLED_BACK = "rolled_back"  # written by billmig.metronome.rollback: Stripe only again
MIGRATING_PHASES = frozenset({PARALLEL_RUN, CUT_OVER, CLEANED_UP, HELD_BACK})
NOT_FOUND_CACHE_SECONDS = 10.0  # an unknown customer may be created any moment; ask again soon


class Destination(StrEnum):
    STRIPE = "stripe"
    METRONOME = "metronome"


@dataclass(frozen=True)
class CustomerRoute:
    internal_id: str
    stripe_customer_id: str | None
    phase: str | None = None
    dual_write_from: datetime | None = None
    cutover_at: datetime | None = None
    run_id: str | None = None  # the batch whose progress item gave the phase
    stripe_decommissioned: bool = False  # the batch was cleaned up: Metronome only

    def destinations(self, timestamp: datetime) -> frozenset[Destination]:
        if self.phase not in MIGRATING_PHASES:
            return frozenset({Destination.STRIPE})
        if self.stripe_decommissioned:
            return frozenset({Destination.METRONOME})
        if self.cutover_at is not None and timestamp >= self.cutover_at:
            return frozenset({Destination.METRONOME})
        return frozenset({Destination.STRIPE, Destination.METRONOME})


class RouteSource(Protocol):
    """The progress store's view: the newest phase written for an internal id, or None if it never had one."""

    def route_of(self, internal_id: str) -> CustomerRoute | None: ...


class StripeCustomerDirectory(Protocol):
    """Stripe's own answer for a customer that is in no migration run: its id by the internal-id metadata."""

    def stripe_customer_for(self, internal_id: str) -> str | None: ...


class RouteBook:
    """Routes by internal id, cached for `ttl` seconds (a miss for `NOT_FOUND_CACHE_SECONDS`)."""

    def __init__(
        self,
        source: RouteSource,
        directory: StripeCustomerDirectory,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        decommissioned: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        """`decommissioned`: the batches whose Stripe usage writes are off (the flag, read through its own cache)."""
        self._decommissioned = decommissioned
        self._source = source
        self._directory = directory
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, CustomerRoute | None]] = {}
        self._lock = threading.Lock()

    def route(self, internal_id: str, *, recheck_miss: bool = False) -> CustomerRoute | None:
        """None: a customer neither in a migration run nor in Stripe (its events are dead-lettered). `recheck_miss`:
        a cached miss is looked up again (the customer may have been created since it was cached, and its events
        replayed after the fix); a cached route is still served from the cache."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(internal_id)
        if cached is not None and cached[0] > now and not (recheck_miss and cached[1] is None):
            return cached[1]
        found = self._source.route_of(internal_id)
        if found is None:
            stripe_id = self._directory.stripe_customer_for(internal_id)
            found = CustomerRoute(internal_id, stripe_id) if stripe_id else None
        elif found.phase == CLEANED_UP and found.run_id in self._decommissioned():
            found = replace(found, stripe_decommissioned=True)
            logger.info(
                "Stripe usage writes decommissioned: events go to Metronome only",
                extra={"customer": found.stripe_customer_id, "internal_id": internal_id, "run": found.run_id},
            )
            metrics.add_metric(name="StripeWritesDecommissioned", unit=MetricUnit.Count, value=1)
        lifetime = self._ttl if found is not None else min(self._ttl, NOT_FOUND_CACHE_SECONDS)
        with self._lock:
            self._cache[internal_id] = (now + lifetime, found)
        return found
