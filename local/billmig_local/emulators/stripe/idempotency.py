"""`Idempotency-Key` on v1 POSTs, as Stripe documents it: the first response (errors included, once the request
ran) is saved and replayed for the same key; the same key with other parameters is a 400 `idempotency_error`.
Keys live in the store, so they outlive a restart like Stripe's 24 h+. 5xx answers are not saved (Stripe lets a
request that failed before it ran be retried under the same key).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import call_recording

from .errors import StripeError


class IdempotencyKeys:
    def __init__(self, app: ASGIApp, store: ObjectStore) -> None:
        self.app = app
        self.store = store
        self.in_flight: set[str] = set()  # keys whose first request is still running
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if not key:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(key) > 255:
            await StripeError(
                400, "Idempotency-Key must be at most 255 characters", param="Idempotency-Key"
            ).response()(scope, receive, send)
            return
        if scope["path"].startswith("/v2/"):  # v2 bodies are JSON
            try:
                canonical = json.dumps(json.loads(body or b"{}"), sort_keys=True)
            except ValueError:
                canonical = body.decode("utf-8", "replace")
        else:
            canonical = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(body.decode("utf-8", "replace"), True)))
        fingerprint = hashlib.sha256(f"{scope['path']}\n{canonical}".encode()).hexdigest()
        with self._lock:
            busy = key in self.in_flight
            if not busy:
                self.in_flight.add(key)
        if busy:
            await StripeError(
                409,
                "There is currently another in-progress request using this Idempotency-Key; try again later.",
                code="idempotency_key_in_use",
            ).response()(scope, receive, send)
            return
        try:
            await self._once(scope, receive, send, key, body, fingerprint)
        finally:
            with self._lock:
                self.in_flight.discard(key)

    async def _once(self, scope: Scope, receive: Receive, send: Send, key: str, body: bytes, fingerprint: str) -> None:
        cached = self.store.get("idempotency", key)
        if cached is not None:
            if cached["fingerprint"] != fingerprint:
                response: Response = StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                ).response()
            else:
                response = _replay(cached)
            await response(scope, receive, send)
            return

        status, answered = await call_recording(self.app, scope, body, send)
        if status and status not in (401, 429) and status < 500:
            self.store.put(
                "idempotency",
                key,
                {"fingerprint": fingerprint, "status": status, "body": answered.decode("utf-8", "replace")},
            )


def _replay(cached: dict[str, Any]) -> Response:
    return Response(
        cached["body"],
        status_code=cached["status"],
        media_type="application/json",
        headers={"idempotent-replayed": "true"},
    )
