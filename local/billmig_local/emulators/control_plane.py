"""Every emulator's control plane under `/_emulator/` (a path no vendor uses): fault injection, latency, a rate
limit with the vendor's published presets, and a request log. Each emulator supplies only how its vendor shapes an
error body.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_emulator"

# (status, message, code) -> the vendor's own error response
ErrorResponder = Callable[[int, str, str], Response]


@dataclass
class FaultRule:
    """Answer matching requests with `status` instead of running them."""

    path: str  # regex, searched in the request path
    status: int
    method: str | None = None
    message: str = "injected fault"
    code: str = "injected_fault"
    headers: dict[str, str] = field(default_factory=dict)
    rate: float = 1.0  # probability a matching request fails
    times: int | None = None  # how many more times it fires; None = unlimited
    body: dict[str, Any] | None = None  # a literal body instead of the vendor's error shape

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    status: int
    at: float
    injected: bool = False


class TokenBucket:
    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class RateLimit(NamedTuple):
    """A vendor's published request limits. Every request counts against `per_second` (a bucket of `burst`), and
    also against its endpoint's `per_endpoint` when set: an endpoint is a named operation, so `GET
    /v1/customers/{customer}` for every id is one (Stripe's rule). An endpoint named in `own` counts against its own
    rate only, not the others (Stripe's meter events)."""

    per_second: float
    burst: float | None = None
    per_endpoint: float | None = None
    own: tuple[tuple[str, float], ...] = ()


def _by_method_and_path(method: str, path: str) -> str:
    return f"{method} {path}"


_LOGGED_HEADERS = ("idempotency-key", "stripe-version", "content-type", "x-api-key", "authorization")


class EmulatorControl:
    """Pure ASGI middleware in front of an emulator app; also serves `/_emulator/*`.

    Control endpoints (JSON):
      GET/DELETE /_emulator/requests       request log (newest last) / clear it
      POST/DELETE /_emulator/faults        add a FaultRule / clear all
      POST /_emulator/latency              {"ms": 20}
      POST /_emulator/rate_limit           {"per_second": 25, "burst": 25, "per_endpoint": 25} or {"preset": name}
                                           or {} to turn off
      GET /_emulator/clock                 the world clock as this emulator sees it
      POST /_emulator/clock                {"offset": seconds}: adopt the world clock's offset (an emulator in a
                                           process of its own follows the stack's clock; see `own_process`)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        error_response: ErrorResponder,
        now: Callable[[], float],
        rate_limit_presets: dict[str, tuple[Any, ...]] | None = None,
        rate_limit_status: int = 429,
        log_size: int = 20_000,
        endpoint_of: Callable[[str, str], str] = _by_method_and_path,
    ) -> None:
        self.app = app
        self.name = name
        self.error_response = error_response
        self.now = now
        self.presets = {name: RateLimit(*value) for name, value in (rate_limit_presets or {}).items()}
        self.rate_limit_status = rate_limit_status
        self.endpoint_of = endpoint_of  # the endpoint (operation) a request is, for per-endpoint limits
        self.faults: list[FaultRule] = []
        self.latency_ms = 0.0
        self.limit: RateLimit | None = None
        self.bucket: TokenBucket | None = None
        self._endpoint_buckets: dict[str, TokenBucket] = {}
        self.log: deque[LoggedRequest] = deque(maxlen=log_size)
        self._lock = threading.Lock()
        self._random = random.Random(0)
        # Set only where this emulator runs in a process of its own: how the stack's clock moves this one's.
        self.follow_clock: Callable[[float], float] | None = None

    # -- injection, usable directly by in-process tests too
    def add_fault(self, rule: FaultRule) -> None:
        with self._lock:
            self.faults.append(rule)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def clear_log(self) -> None:
        self.log.clear()

    def seed_faults(self, seed: int) -> None:
        """Which requests a rate-based fault picks is a seeded draw per request: a test with few requests chooses a
        seed whose draws reach them (the sequence, not the rate, is what it fixes)."""
        with self._lock:
            self._random = random.Random(seed)

    def set_rate_limit(
        self,
        per_second: float | None,
        burst: float | None = None,
        per_endpoint: float | None = None,
        own: tuple[tuple[str, float], ...] = (),
    ) -> None:
        with self._lock:
            self.limit = RateLimit(per_second, burst, per_endpoint, own) if per_second else None
            self.bucket = TokenBucket(per_second, burst) if per_second else None
            self._endpoint_buckets = {}

    def _throttled(self, method: str, path: str) -> bool:
        limit, bucket = self.limit, self.bucket
        if limit is None or bucket is None:
            return False
        if limit.per_endpoint or limit.own:
            endpoint = self.endpoint_of(method, path)
            own = dict(limit.own).get(endpoint)
            if own is not None:
                return not self._endpoint_bucket(endpoint, own).take()
            if limit.per_endpoint and not self._endpoint_bucket(endpoint, limit.per_endpoint).take():
                return True
        return not bucket.take()

    def _endpoint_bucket(self, endpoint: str, per_second: float) -> TokenBucket:
        found = self._endpoint_buckets.get(endpoint)
        if found is None:
            with self._lock:
                found = self._endpoint_buckets.setdefault(endpoint, TokenBucket(per_second))
        return found

    def _pick_fault(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.faults:
                if rule.matches(method, path) and self._random.random() < rule.rate:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX + "/"):
            response = await self._control(Request(scope, receive))
            await response(scope, receive, send)
            return

        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)

        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)

        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry = LoggedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)),
            headers={k: v for k, v in headers.items() if k in _LOGGED_HEADERS},
            body=body.decode("utf-8", "replace"),
            status=0,
            at=self.now(),
        )

        injected: Response | None = None
        if self._throttled(method, path):
            injected = self.error_response(
                self.rate_limit_status, "Too many requests (emulated rate limit)", "rate_limit"
            )
        else:
            rule = self._pick_fault(method, path)
            if rule is not None:
                if rule.body is not None:
                    injected = JSONResponse(rule.body, status_code=rule.status)
                else:
                    injected = self.error_response(rule.status, rule.message, rule.code)
                for key, value in rule.headers.items():
                    injected.headers[key] = value
        if injected is not None:
            entry.status = injected.status_code
            entry.injected = True
            self.log.append(entry)
            await injected(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            self.log.append(entry)

    async def _control(self, request: Request) -> Response:
        what = request.url.path[len(CONTROL_PREFIX) + 1 :].strip("/")
        method = request.method
        if what == "requests" and method == "GET":
            return JSONResponse([asdict(e) for e in list(self.log)])
        if what == "requests" and method == "DELETE":
            self.log.clear()
            return JSONResponse({"cleared": True})
        if what == "faults" and method == "POST":
            self.add_fault(FaultRule(**(await request.json())))
            return JSONResponse({"faults": [asdict(f) for f in self.faults]})
        if what == "faults" and method == "DELETE":
            self.clear_faults()
            return JSONResponse({"faults": []})
        if what == "faults" and method == "GET":
            return JSONResponse({"faults": [asdict(f) for f in self.faults]})
        if what == "latency" and method == "POST":
            self.latency_ms = float((await request.json()).get("ms", 0))
            return JSONResponse({"ms": self.latency_ms})
        if what == "rate_limit" and method == "POST":
            payload = await request.json()
            if "preset" in payload:
                if payload["preset"] not in self.presets:
                    return JSONResponse({"error": f"unknown preset; known: {sorted(self.presets)}"}, 400)
                self.set_rate_limit(*self.presets[payload["preset"]])
            else:
                self.set_rate_limit(payload.get("per_second"), payload.get("burst"), payload.get("per_endpoint"))
            answer: dict[str, Any] = {"per_second": self.limit.per_second if self.limit else None}
            if self.limit and self.limit.per_endpoint:
                answer["per_endpoint"] = self.limit.per_endpoint
            if self.limit and self.limit.own:
                answer["own"] = dict(self.limit.own)
            return JSONResponse(answer)
        if what == "clock" and method == "GET":
            return JSONResponse({"now": self.now()})
        if what == "clock" and method == "POST" and self.follow_clock is not None:
            # in a thread, as the stack's own mover runs the listeners (a billing catch-up) outside the event loop
            offset = float((await request.json())["offset"])
            return JSONResponse({"now": await asyncio.to_thread(self.follow_clock, offset)})
        return JSONResponse({"error": f"no control endpoint {method} {request.url.path}"}, 404)
