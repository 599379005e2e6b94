"""An emulator's HTTP server (uvicorn on 127.0.0.1 in a thread), and what an emulator package hands `local up`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Scope, Send

from billmig_local.emulators.control_plane import FaultRule, LoggedRequest


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


class Serving(Protocol):
    """What the stack needs of an emulator's server, in its own process or in another (`own_process`)."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


class Controls(Protocol):
    """The control plane as the stack, the demo and the benches use it, in process or over `/_emulator/*`."""

    @property
    def log(self) -> Iterable[LoggedRequest]: ...

    def clear_log(self) -> None: ...

    def add_fault(self, rule: FaultRule) -> None: ...

    def clear_faults(self) -> None: ...


@dataclass
class RunningEmulator:
    name: str
    server: Serving
    control: Controls
    extra: MutableMapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


AsyncEndpoint = Callable[[Request], Awaitable[Response]]
