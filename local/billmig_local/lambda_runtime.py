"""Lambda execution environments for the local stack: one warm process per environment, forked from a runtime host.

The runtime host (`python -P -m billmig_local.lambda_runtime CONTROL_FD [MODULE | client:SERVICE ...]`) imports
the libraries that every function uses once (and warms the AWS clients they build), single-threaded, then forks
an execution environment whenever the bridge asks for one.
An environment sets exactly its function's variables and import path (nothing of the host's or the bridge's),
imports the handler on its first invocation (Lambda's init phase) and then serves invocations one at a time over
its own socket, keeping module state between them like a warm container. A crash or a kill ends only that process.

Runs inside the "container": it imports nothing of moto and nothing else of billmig_local.

Wire format, one JSON object per message.
  control socket (SOCK_SEQPACKET, bridge <-> host):
    -> {"spawn": WORKER_ID, "env": {...}, "path": [...], "handler": "app.handler"} with the environment's socket fd
    <- {"spawned": WORKER_ID, "pid": PID}      <- {"exited": PID, "status": N}  (negative N: killed by signal -N)
  environment socket (stream, JSON lines, bridge <-> environment):
    -> {"invoke": REQUEST_ID, "event": ..., "context": {...}, "timeout_ms": N, "clock_offset": SECONDS}
    <- {"log": TEXT} ...   <- {"started": REQUEST_ID}   <- {"result": PAYLOAD, "errored": BOOL, "fatal": BOOL}
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import pkgutil
import select
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, BinaryIO

# What a handler reads for the local world's time: the world clock's offset from the host's, in seconds, as of the
# invocation's start (world now = time.time() + offset). On AWS the variable is absent and the offset is 0.
CLOCK_OFFSET_VARIABLE = "BILLMIG_WORLD_CLOCK_OFFSET_SECONDS"

_REAP_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1


# --------------------------------------------------------------------------------------------------------------------
# The runtime host
# --------------------------------------------------------------------------------------------------------------------
def serve_host(control: socket.socket, preload: list[str]) -> None:
    """Fork environments on request and report their exits, until the bridge closes the control socket."""
    clients = [name.removeprefix("client:") for name in preload if name.startswith("client:")]
    model_packages = [name.removeprefix("models:") for name in preload if name.startswith("models:")]
    for name in preload:
        if ":" not in name:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    _warm_clients(clients)
    _complete_models(model_packages)
    # What the host loaded is shared by every environment it forks: frozen, no environment's collector walks it
    # again (or touches its pages, which copy-on-write would then copy).
    gc.collect()
    gc.freeze()
    children: set[int] = set()
    try:
        while True:
            ready, _, _ = select.select([control], [], [], _REAP_SECONDS)
            _reap(control, children)
            if not ready:
                continue
            data, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
            if not data:
                return
            request = json.loads(data)
            if not fds:
                continue
            pid = os.fork()
            if pid == 0:
                _become_environment(control, fds[0], request)
            os.close(fds[0])
            children.add(pid)
            control.send(json.dumps({"spawned": request["spawn"], "pid": pid}).encode())
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _warm_clients(services: list[str]) -> None:
    """Build one client per service on boto3's default session and drop it: the session keeps the parsed service
    models and endpoint data (~90 ms for DynamoDB's), so an environment's first client costs what a warm one does.
    Explicit dummy keys and region, so the session resolves nothing from this host's (empty) environment."""
    if not services:
        return
    with contextlib.suppress(Exception):
        import boto3

        for service in services:
            boto3.client(service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")  # type: ignore[call-overload]


def _complete_models(packages: list[str]) -> None:
    """Build the validators of every pydantic model these packages define. An SDK whose models build lazily (the
    Metronome SDK's: on a model's first response) would otherwise build them again in every new environment, a
    quarter of a second of CPU each, where the host builds them once for all it forks."""
    if not packages:
        return
    with contextlib.suppress(ImportError):
        import pydantic

        for package in packages:
            root = importlib.import_module(package)
            for found in pkgutil.walk_packages(getattr(root, "__path__", []), f"{package}."):
                importlib.import_module(found.name)
        pending = list(pydantic.BaseModel.__subclasses__())
        while pending:
            model = pending.pop()
            pending.extend(model.__subclasses__())
            if model.__module__.startswith(tuple(packages)) and not model.__pydantic_complete__:
                with contextlib.suppress(Exception):  # a model that cannot build here builds (or fails) as it would
                    model.model_rebuild()


def _reap(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        with contextlib.suppress(OSError):
            control.send(json.dumps({"exited": pid, "status": os.waitstatus_to_exitcode(status)}).encode())


def _become_environment(control: socket.socket, fd: int, spec: dict[str, Any]) -> None:
    """In the forked child: never return into the host's loop."""
    code = 1
    try:
        control.close()
        _die_with_the_host()
        code = run_environment(socket.socket(fileno=fd), spec)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc(file=sys.__stderr__)
    finally:
        os._exit(code)


def _die_with_the_host() -> None:
    """The host forks from its only thread, so its exit is this environment's parent-death signal (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------------------------
# An execution environment
# --------------------------------------------------------------------------------------------------------------------
class _Channel:
    """The environment's end of its socket; handler threads may log while the main thread answers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            self.sock.sendall(data)


class _LogStream(io.TextIOBase):
    """`sys.stdout` and `sys.stderr` of the environment: whole lines go to the bridge as they are written, so the
    log of an invocation that times out or crashes keeps everything printed before it did."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" not in self._pending:
                return len(text)
            complete, _, self._pending = self._pending.rpartition("\n")
        self._channel.send({"log": complete + "\n"})
        return len(text)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, ""
        if pending:
            self._channel.send({"log": pending})

    def writable(self) -> bool:
        return True


@dataclass
class InvocationContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(default=0.0, repr=False)  # time.monotonic() at which the invocation times out
    client_context: Any = None
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace


def run_environment(sock: socket.socket, spec: dict[str, Any]) -> int:
    """Serve invocations until the bridge closes the socket; returns the exit code."""
    os.environ.clear()
    os.environ.update(spec["env"])
    time.tzset()
    sys.path[:0] = [p for p in spec["path"] if p not in sys.path]
    channel = _Channel(sock)
    stream = _LogStream(channel)
    sys.stdout = sys.stderr = stream
    requests: BinaryIO = sock.makefile("rb")
    handler: Any = None
    for line in requests:
        request = json.loads(line)
        os.environ[CLOCK_OFFSET_VARIABLE] = repr(float(request.get("clock_offset", 0.0)))
        if handler is None:
            try:
                handler = _load_handler(spec["handler"])
            except _InitError as error:
                _log_error(error.error_type, str(error), error.trace)
                stream.flush()
                payload = _error_payload(error.error_type, str(error), error.trace)
                channel.send({"result": payload, "errored": True, "fatal": True})
                return 1
        channel.send({"started": request["invoke"]})
        context = InvocationContext(
            **request["context"],
            aws_request_id=request["invoke"],
            deadline=time.monotonic() + request["timeout_ms"] / 1000,
        )
        payload, errored = _invoke(handler, request["event"], context)
        stream.flush()
        channel.send({"result": payload, "errored": errored, "fatal": False})
    return 0


def _load_handler(handler: str) -> Any:
    """Lambda's init phase, with the Python runtime's error names for what can go wrong in it."""
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack", [])
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", []) from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        message = f"Syntax error in module '{module_name}': {exc}"
        raise _InitError("Runtime.UserCodeSyntaxError", message, trace) from exc
    except Exception as exc:
        trace = traceback.format_exception(exc)
        raise _InitError(type(exc).__name__, str(exc), "".join(trace).splitlines()) from exc
    if not hasattr(module, attribute):
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'", [])
    return getattr(module, attribute)


def _invoke(handler: Any, event: Any, context: InvocationContext) -> tuple[str, bool]:
    try:
        result = handler(event, context)
    except Exception as exc:
        trace = traceback.format_exc().splitlines()
        _log_error(type(exc).__name__, str(exc), trace)
        return _error_payload(type(exc).__name__, str(exc), trace), True
    try:
        return json.dumps(result), False
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        _log_error("Runtime.MarshalError", message, [])
        return _error_payload("Runtime.MarshalError", message, []), True


def _log_error(error_type: str, message: str, trace: list[str]) -> None:
    """What Lambda's Python runtime prints for a failed invocation, so the log tells what the caller was told."""
    print(f"[ERROR] {error_type}: {message}" + "".join(f"\n{line}" for line in trace))


def _error_payload(error_type: str, message: str, trace: list[str]) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace})


def main(argv: list[str]) -> None:
    control = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops `billmig local up`, which then closes this host
    serve_host(control, argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
