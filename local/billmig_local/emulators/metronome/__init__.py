"""Metronome emulator: a real HTTP server that `metronome-sdk` drives, with Metronome's contract billing.

`start(...)` is what `billmig local up` calls. State lives in `state_dir/metronome/state.sqlite` (or in memory).
Besides Metronome's own operations (`app.ROUTES`) it serves `/_emulator/*` (faults, latency, rate limit, request
log, clock; see `base.EmulatorControl`), `GET /_metronome/stripe-deliveries[?customer_id=]` (the invoices it has
sent to Stripe, with the Stripe invoice id and status) and `GET /_metronome/billable-status?customer_id=` (past and
scheduled billable-status changes, which Metronome's API does not show). `billmig local seed metronome`
(`seed.py`) creates the shared catalogue in it.

Stripe: `extra["connect_stripe"](url)` (or $BILLMIG_METRONOME_STRIPE_API_BASE) points it at a Stripe emulator;
billable invoices then arrive there as invoices of the configured Stripe customer and a STRIPE payment gate
charges auto-recharges there (`stripe_delivery.py`). Without it deliveries are only recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from billmig_local.clock import WorldClock
from billmig_local.emulators import LocalSecret, StackWiring
from billmig_local.emulators.control_plane import EmulatorControl
from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import EmulatorServer, RunningEmulator

from .app import build_app
from .billing_engine import BillingEngine
from .errors import error_response
from .idempotency import IdempotencyKeys
from .stripe_delivery import STRIPE_URL_ENV, StripeGateway

RATE_LIMIT_PRESETS = {"metronome": (100.0, 200.0), "tight": (5.0, 5.0)}

STACK_WIRING = StackWiring(
    template_parameters=lambda url: {"MetronomeApiBase": url},
    local_secret=LocalSecret(output="MetronomeApiKeySecretName", value="local-metronome-token"),
)


def start(*, clock: WorldClock, state_dir: Path | None, port: int = 0) -> RunningEmulator:
    store = ObjectStore(state_dir / "metronome" / "state.sqlite" if state_dir is not None else None)
    engine = BillingEngine(store, clock.now, StripeGateway(os.environ.get(STRIPE_URL_ENV)))
    app = IdempotencyKeys(build_app(store, engine, clock.now), store)
    control = EmulatorControl(
        app, name="metronome", error_response=error_response, now=clock.now, rate_limit_presets=RATE_LIMIT_PRESETS
    )
    clock.subscribe(lambda _old, _new: engine.catch_up())
    server = EmulatorServer(control, port=port)
    server.start()
    return RunningEmulator(
        "metronome",
        server,
        control,
        extra={"store": store, "engine": engine, "connect_stripe": engine.connect_stripe},
    )


STACK_WIRING = StackWiring(
    template_parameters=lambda url: {"MetronomeApiBase": url},
    local_secret=LocalSecret(output="MetronomeApiKeySecretName", value="local-metronome-token"),
)
