"""Stripe emulator: a real HTTP server that the official `stripe` SDK drives, with Stripe's subscription billing.

`start(...)` is what `billmig local up` calls. State lives in `state_dir/stripe/state.sqlite` (or in memory). The
local stack calls `advance_test_clocks` after moving the world clock, so every test clock moves to the world's
instant.

Where the emulator knowingly simplifies Stripe (each module's docstring says more):
- no proration except `DELETE ... prorate=true` and a first period up to a later billing cycle anchor; periods
  before a `backdate_start_date` are not invoiced;
- subscription schedules only `from_subscription`; a phase's item changes apply at its start without proration;
- invoices finalize at once (no one-hour draft); paid with a default payment method, else open and `past_due`;
- thresholds compare the period's unbilled metered subtotal (before credits) with `amount_gte`; no
  `reset_billing_cycle_anchor`, no item `usage_gte`; usage during a trial is shown at 0;
- a mid-period end (`cancel_at`, `DELETE invoice_now`) issues its final invoice with `billing_reason`
  `subscription_cycle` like a period end (Stripe's exact reason for it is not documented);
- test clocks advance synchronously (`ready` at once) and by any distance; three customers per clock as in Stripe;
- grant expiry is not booked as a transaction: the ledger balance keeps an expired remainder, the available one not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billmig_local.clock import WorldClock
from billmig_local.emulators import LocalSecret, StackWiring
from billmig_local.emulators.control_plane import EmulatorControl, RateLimit
from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import EmulatorServer, RunningEmulator

from .app import build_app, endpoint_of
from .billing_engine import BillingEngine
from .errors import error_response
from .idempotency import IdempotencyKeys
from .meter_event_stream import STREAM_PATH
from .state import StripeState

# Stripe's published limits (https://docs.stripe.com/rate-limits): 25 ops/s in a sandbox, 100 ops/s live, and 25
# requests/s per endpoint unless noted (each named operation: every id's `GET /v1/customers/{customer}` is one);
# live, v1 meter events have a limit of their own (1,000 calls/s) that does not count against the others, and so
# does the v2 meter event stream (10,000 requests/s).
METER_EVENTS_OWN = (("POST /v1/billing/meter_events", 1_000.0), (f"POST {STREAM_PATH}", 10_000.0))
RATE_LIMIT_PRESETS: dict[str, tuple[Any, ...]] = {
    "stripe_sandbox": RateLimit(25.0, 25.0, 25.0),
    "stripe_live": RateLimit(100.0, 100.0, 25.0, METER_EVENTS_OWN),
    "tight": RateLimit(5.0, 5.0),
}


def _advance_test_clocks(url: str, seconds: float, to: float) -> int:
    return advance_test_clocks(url, seconds, to=to)


def start(*, clock: WorldClock, state_dir: Path | None, port: int = 0) -> RunningEmulator:
    store = ObjectStore(state_dir / "stripe" / "state.sqlite" if state_dir is not None else None)
    state = StripeState(store, clock.now)
    engine = BillingEngine(state)
    idempotency = IdempotencyKeys(build_app(state, engine), store)
    control = EmulatorControl(
        idempotency,
        name="stripe",
        error_response=error_response,
        now=clock.now,
        rate_limit_presets=RATE_LIMIT_PRESETS,
        endpoint_of=endpoint_of,
    )

    def follow_world(_old: float, _new: float) -> None:
        engine.catch_up(world=True)

    clock.subscribe(follow_world)
    engine.catch_up(world=True)
    server = EmulatorServer(control, port=port)
    server.start()
    return RunningEmulator(
        "stripe", server, control, extra={"store": store, "state": state, "engine": engine, "idempotency": idempotency}
    )


def advance_test_clocks(
    api_url: str, seconds: float | None = None, *, to: float | None = None, threads: int = 4
) -> int:
    """Move every test clock that is behind the world clock to the world's instant, through Stripe's own advance
    endpoint; how many moved.

    To the instant, not by the distance the world moved: a clock created some real time ago would otherwise lag by
    that much for ever, and month boundaries would land seconds apart here and in the other emulators. A clock
    ahead of the world stays where it is (a test clock never goes back). `seconds` is how far the world just moved,
    as `billmig local stack` reports it; 0 means nothing to do. `to` is the instant the world is about to move to
    (the stack advances the test clocks first, so a Task the move wakes finds Stripe already there). A few threads
    overlap the SDK's per-request work.
    """
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import stripe

    if seconds is not None and seconds <= 0:
        return 0
    world = (
        int(to)
        if to is not None
        else int(float(httpx.get(api_url.rstrip("/") + "/_emulator/clock", timeout=10).json()["now"]))
    )
    client = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": api_url, "meter_events": api_url}, max_network_retries=2
    )
    clocks = [
        clock
        for clock in client.v1.test_helpers.test_clocks.list(params={"limit": 100}).auto_paging_iter()
        if clock.frozen_time < world
    ]

    def advance(clock: stripe.test_helpers.TestClock) -> None:
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": world})

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(advance, clocks))
    return len(clocks)


STACK_WIRING = StackWiring(
    template_parameters=lambda url: {"StripeApiBase": url},
    local_secret=LocalSecret(output="StripeApiKeySecretName", value="sk_test_local"),
    on_clock_moved=_advance_test_clocks,
)
