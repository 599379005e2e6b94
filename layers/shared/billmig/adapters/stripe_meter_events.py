"""`StripeMeterSink` on the official SDK: the v2 meter event stream (default) or v1 meter events (the fallback).

The stream takes 100 events per request with a 15-minute meter event session token, and answers before it
validates: Stripe reports a refused event later (`v1.billing.meter.error_report_triggered`), not in the answer. So
before an event goes on the stream, the sink checks what Stripe would refuse it for and it can know: a meter for the
event name that is active, and a timestamp inside Stripe's window (35 days back, 5 minutes ahead, with a minute's
margin). The customer was resolved by the router. v1 answers each event's refusal itself; a v1 "already exists" for
the identifier means the event was counted before, which is success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import stripe

from billmig.bulk import chunked
from billmig.usage.ports import Refusal, StripeMeterEvent
from billmig.world_clock import WorldClock

STREAM_BATCH = 100  # Stripe: at most 100 events per meter event stream request
SESSION_RENEW_SECONDS = 10 * 60  # sessions last 15 minutes; renew well before
PAST_WINDOW = 35 * 86400
FUTURE_WINDOW = 5 * 60
WINDOW_MARGIN = 60
METERS_CACHE_SECONDS = 60.0
V1_CONCURRENCY = 8
_WORLD = WorldClock()  # the host's clock on AWS, the local world's on the local stack


def _reason(exc: stripe.StripeError) -> str:
    return str(exc.user_message or exc)


def _refusal(exc: stripe.StripeError) -> Refusal:
    transient = isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError | stripe.APIError) or (
        exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 409)
    )
    return Refusal(_reason(exc), transient)


def _already_counted(exc: stripe.StripeError) -> bool:
    error = getattr(exc, "error", None)
    param = getattr(error, "param", None)
    return param == "identifier" and "already exists" in _reason(exc)


class StripeMeterEventSink:
    def __init__(
        self,
        client: stripe.StripeClient,
        transport: Literal["stream", "v1"] = "stream",
        *,
        now: Callable[[], float] = _WORLD.now,
    ) -> None:
        self._client = client
        self.client = client  # shared with the customer directory: one connection pool
        self._transport = transport
        self._now = now
        self._lock = threading.Lock()
        self._token = ""
        self._token_at = 0.0
        self._meters: dict[str, str] = {}
        self._meters_at = -METERS_CACHE_SECONDS

    @classmethod
    def connect(
        cls,
        api_key: str,
        api_base: str | None,
        transport: Literal["stream", "v1"] = "stream",
        *,
        now: Callable[[], float] = _WORLD.now,
    ) -> StripeMeterEventSink:
        """`now` is the world's clock Stripe judges the window on (outside a Lambda, the caller's target's)."""
        addresses: dict[str, str] = {"api": api_base, "meter_events": api_base} if api_base else {}
        client = stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=2)  # type: ignore[arg-type]
        return cls(client, transport, now=now)

    def send(self, events: list[StripeMeterEvent]) -> dict[int, Refusal]:
        if not events:
            return {}
        if self._transport == "v1":
            return self._send_v1(events)
        return self._send_stream(events)

    # -- v2 stream --------------------------------------------------------------------------------------------------
    def _send_stream(self, events: list[StripeMeterEvent]) -> dict[int, Refusal]:
        refused: dict[int, Refusal] = {}
        try:
            meters = self._meter_statuses()
        except stripe.StripeError as exc:
            return dict.fromkeys(range(len(events)), _refusal(exc))
        now = self._now()
        ready: list[int] = []
        for index, event in enumerate(events):
            status = meters.get(event.event_name)
            if status is None:
                refused[index] = Refusal(f"no Stripe meter for event_name {event.event_name!r}", False)
            elif status != "active":
                refused[index] = Refusal(f"the Stripe meter for {event.event_name!r} is {status}", False)
            elif not now - PAST_WINDOW + WINDOW_MARGIN <= event.timestamp <= now + FUTURE_WINDOW - WINDOW_MARGIN:
                refused[index] = Refusal(
                    f"timestamp {event.timestamp} is outside Stripe's window (35 days back, 5 minutes ahead)", False
                )
            else:
                ready.append(index)
        for part in chunked(ready, STREAM_BATCH):
            failure = self._stream([events[i] for i in part])
            if failure is not None:
                refused.update(dict.fromkeys(part, failure))
        return refused

    def _stream(self, events: list[StripeMeterEvent]) -> Refusal | None:
        body: Any = {
            "events": [
                {
                    "event_name": e.event_name,
                    "identifier": e.identifier,
                    "payload": e.payload,
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.timestamp)),
                }
                for e in events
            ]
        }
        for renewed in (False, True):
            try:
                token = self._session_token(renew=renewed)
                self._client.v2.billing.meter_event_stream.create(params=body, options={"api_key": token})
                return None
            except stripe.AuthenticationError as exc:
                if renewed:
                    return Refusal(f"meter event session: {_reason(exc)}", True)
            except stripe.StripeError as exc:
                return _refusal(exc)
        return None  # pragma: no cover - the loop returns

    def _session_token(self, *, renew: bool) -> str:
        with self._lock:
            if renew or not self._token or time.monotonic() - self._token_at > SESSION_RENEW_SECONDS:
                self._token = self._client.v2.billing.meter_event_session.create().authentication_token
                self._token_at = time.monotonic()
            return self._token

    def _meter_statuses(self) -> dict[str, str]:
        with self._lock:
            if time.monotonic() - self._meters_at < METERS_CACHE_SECONDS:
                return self._meters
        found = {
            meter.event_name: meter.status
            for meter in self._client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter()
        }
        with self._lock:
            self._meters, self._meters_at = found, time.monotonic()
        return found

    # -- v1 ---------------------------------------------------------------------------------------------------------
    def _send_v1(self, events: list[StripeMeterEvent]) -> dict[int, Refusal]:
        def one(event: StripeMeterEvent) -> Refusal | None:
            try:
                self._client.v1.billing.meter_events.create(
                    params={
                        "event_name": event.event_name,
                        "identifier": event.identifier,
                        "payload": event.payload,
                        "timestamp": event.timestamp,
                    }
                )
            except stripe.StripeError as exc:
                return None if _already_counted(exc) else _refusal(exc)
            return None

        with ThreadPoolExecutor(max_workers=V1_CONCURRENCY) as pool:
            answers = list(pool.map(one, events))
        return {index: refusal for index, refusal in enumerate(answers) if refusal is not None}
