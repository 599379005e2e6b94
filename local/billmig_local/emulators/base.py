"""What every vendor emulator shares: a real HTTP server, a persistent object store, and a control plane.

The control plane lives under `/_emulator/` (a path no vendor uses) and gives tests and operators fault injection,
latency, a rate limit and a request log. Each emulator supplies only how its vendor shapes an error body.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_emulator"

# (status, message, code) -> the vendor's own error response
ErrorResponder = Callable[[int, str, str], Response]


# --------------------------------------------------------------------------------------------------------------------
# Persistent object store
# --------------------------------------------------------------------------------------------------------------------
class ObjectStore:
    """JSON objects by (kind, id) in SQLite, mirrored in memory; survives a restart of `billmig local up`.

    Reads come from memory; every write goes through to disk at once, so a crash loses nothing acknowledged.
    Iteration order is insertion order (what list endpoints page over).
    """

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._mem: dict[str, dict[str, dict[str, Any]]] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS objects (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
                " id TEXT NOT NULL, body TEXT NOT NULL, UNIQUE(kind, id))"
            )
            for kind, oid, body in self._db.execute("SELECT kind, id, body FROM objects ORDER BY seq"):
                self._mem.setdefault(kind, {})[oid] = json.loads(body)

    def put(self, kind: str, oid: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._mem.setdefault(kind, {})[oid] = obj
            if self._db is not None:
                self._db.execute(
                    "INSERT INTO objects(kind, id, body) VALUES (?, ?, ?)"
                    " ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
                    (kind, oid, json.dumps(obj, separators=(",", ":"))),
                )
        return obj

    def get(self, kind: str, oid: str) -> dict[str, Any] | None:
        with self.lock:
            return self._mem.get(kind, {}).get(oid)

    def delete(self, kind: str, oid: str) -> None:
        with self.lock:
            self._mem.get(kind, {}).pop(oid, None)
            if self._db is not None:
                self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, oid))

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._mem.get(kind, {}).values())

    def ids(self, kind: str) -> Iterator[str]:
        with self.lock:
            return iter(list(self._mem.get(kind, {})))

    def count(self, kind: str) -> int:
        with self.lock:
            return len(self._mem.get(kind, {}))

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# --------------------------------------------------------------------------------------------------------------------
# Control plane: faults, latency, rate limit, request log
# --------------------------------------------------------------------------------------------------------------------
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


_LOGGED_HEADERS = ("idempotency-key", "stripe-version", "content-type", "x-api-key", "authorization")


class EmulatorControl:
    """Pure ASGI middleware in front of an emulator app; also serves `/_emulator/*`.

    Control endpoints (JSON):
      GET/DELETE /_emulator/requests       request log (newest last) / clear it
      POST/DELETE /_emulator/faults        add a FaultRule / clear all
      POST /_emulator/latency              {"ms": 20}
      POST /_emulator/rate_limit           {"per_second": 25, "burst": 25} or {"preset": name} or {} to turn off
      GET /_emulator/clock                 the world clock as this emulator sees it
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        error_response: ErrorResponder,
        now: Callable[[], float],
        rate_limit_presets: dict[str, tuple[float, float]] | None = None,
        rate_limit_status: int = 429,
        log_size: int = 20_000,
    ) -> None:
        self.app = app
        self.name = name
        self.error_response = error_response
        self.now = now
        self.presets = rate_limit_presets or {}
        self.rate_limit_status = rate_limit_status
        self.faults: list[FaultRule] = []
        self.latency_ms = 0.0
        self.bucket: TokenBucket | None = None
        self.log: deque[LoggedRequest] = deque(maxlen=log_size)
        self._lock = threading.Lock()
        self._random = random.Random(0)

    # -- injection, usable directly by in-process tests too
    def add_fault(self, rule: FaultRule) -> None:
        with self._lock:
            self.faults.append(rule)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def seed_faults(self, seed: int) -> None:
        """Which requests a rate-based fault picks is a seeded draw per request: a test with few requests chooses a
        seed whose draws reach them (the sequence, not the rate, is what it fixes)."""
        with self._lock:
            self._random = random.Random(seed)

    def set_rate_limit(self, per_second: float | None, burst: float | None = None) -> None:
        self.bucket = TokenBucket(per_second, burst) if per_second else None

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
        if self.bucket is not None and not self.bucket.take():
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
                per_second, burst = self.presets[payload["preset"]]
                self.set_rate_limit(per_second, burst)
            else:
                self.set_rate_limit(payload.get("per_second"), payload.get("burst"))
            return JSONResponse({"per_second": self.bucket.per_second if self.bucket else None})
        if what == "clock" and method == "GET":
            return JSONResponse({"now": self.now()})
        return JSONResponse({"error": f"no control endpoint {method} {request.url.path}"}, 404)


# --------------------------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------------------------
class EmulatorServer:
    """Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread (sync endpoints run in its thread pool)."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections, and the listener's own
        # TCP_NODELAY, which Linux copies to them: without it a keep-alive response waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"emulator:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator server on {self.url} did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()


async def call_recording(app: ASGIApp, scope: Scope, body: bytes, send: Send) -> tuple[int, bytes]:
    """Run `app` on a request whose body was already read, passing its response on and keeping a copy: what an
    idempotency layer stores to replay later."""
    status = 0
    chunks: list[bytes] = []

    async def replay_body() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
        await send(message)

    await app(scope, replay_body, capture)
    return status, b"".join(chunks)


# --------------------------------------------------------------------------------------------------------------------
# What an emulator package exposes to `billmig local up`
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class RunningEmulator:
    name: str
    server: EmulatorServer
    control: EmulatorControl
    extra: MutableMapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


AsyncEndpoint = Callable[[Request], Awaitable[Response]]
