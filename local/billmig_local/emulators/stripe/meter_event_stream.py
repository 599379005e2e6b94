"""The v2 high-throughput path: a 15-minute meter event session, then up to 100 events per stream request.

As in Stripe, the stream answers before validation: every event is then checked like a v1 meter event, and the ones
Stripe would reject (unknown customer, outside the time window, duplicate identifier, inactive meter) are dropped
and counted in `state.stream_rejections` (Stripe reports them later as `v1.billing.meter.error_report_triggered`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from billmig_local.clock import to_rfc3339

from .api_call import ApiCall
from .errors import StripeError
from .meters import record_meter_event

SESSION_SECONDS = 15 * 60
STREAM_PATH = "/v2/billing/meter_event_stream"


def create_session(call: ApiCall) -> dict[str, Any]:
    state = call.state
    now = state.world_now()
    token = "mes_tok_" + secrets.token_hex(16)
    session: dict[str, Any] = {
        "id": state.new_id("mes"),
        "object": "v2.billing.meter_event_session",
        "authentication_token": token,
        "created": to_rfc3339(int(now)),
        "expires_at": to_rfc3339(int(now) + SESSION_SECONDS),
        "livemode": False,
    }
    state.store.put(
        "meter_event_session", session["authentication_token"], session | {"_expires": now + SESSION_SECONDS}
    )
    return session


def authorized(call: ApiCall, token: str) -> None:
    session = call.state.store.get("meter_event_session", token)
    if session is None or session["_expires"] <= call.state.world_now():
        raise StripeError(
            401, "The meter event session token is missing, unknown or expired.", type="invalid_request_error"
        )


def _instant(value: str | None) -> int | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def stream_events(call: ApiCall) -> dict[str, Any]:
    events = call.params["events"]
    if len(events) > 100:
        raise StripeError(400, "At most 100 events per request.", param="events")
    for event in events:
        try:
            record_meter_event(
                call,
                event["event_name"],
                {str(k): str(v) for k, v in event["payload"].items()},
                event.get("identifier"),
                _instant(event.get("timestamp")),
            )
        except (StripeError, ValueError):
            call.state.stream_rejections += 1
    return {}
