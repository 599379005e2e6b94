"""`Idempotency-Key` on any POST: the first reply (errors included) is cached and replayed for the same request;
the same key with other parameters is a 409. Kept in the store, so it survives a restart like Metronome's 24 h+.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import call_recording

from .errors import error_response


class IdempotencyKeys:
    def __init__(self, app: ASGIApp, store: ObjectStore) -> None:
        self.app = app
        self.store = store

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
        fingerprint = hashlib.sha256(
            scope["path"].encode() + b"?" + scope.get("query_string", b"") + b"\n" + _canonical(body)
        ).hexdigest()
        cached = self.store.get("idempotency", key)
        if cached is not None:
            if cached["fingerprint"] != fingerprint:
                response = error_response(
                    409, "Idempotency-Key was already used for a request with different parameters", ""
                )
            else:
                response = _replay(cached)
            await response(scope, receive, send)
            return

        status, answered = await call_recording(self.app, scope, body, send)
        if status and status != 401 and status < 500:
            self.store.put(
                "idempotency",
                key,
                {"fingerprint": fingerprint, "status": status, "body": answered.decode("utf-8", "replace")},
            )


def _canonical(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return body


def _replay(cached: dict[str, Any]) -> Response:
    return Response(
        cached["body"],
        status_code=cached["status"],
        media_type="application/json",
        headers={"x-idempotent-replayed": "true"},
    )
