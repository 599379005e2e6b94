"""Run deployed Lambda functions in local execution environments, from the very zips CloudFormation deployed.

moto runs function code only in Docker, and there is none here. The bridge takes its place at moto's single invoke
hook, so both the Invoke API and Step Functions tasks reach the function's own code. Each function has a pool of
execution environments (`lambda_runtime`: one process each, with only that function's variables, code and layers,
warm between invocations), started on demand up to its concurrency: `ReservedConcurrentExecutions` when set, else
the stack's default. Invocations of a function run in parallel across its environments, as on Lambda.

What callers see is Lambda's contract: a handler exception's class name is the `errorType` (what Step Functions
matches `Retry`/`Catch` against); an environment that outlives the function's timeout is killed and the invocation
fails with `Sandbox.Timedout`, one that exits fails with `Runtime.ExitError`, and either is replaced; a full pool
answers `TooManyRequestsException` (HTTP 429). Each environment writes its own log stream in the function's log
group, with START/END/REPORT lines around each invocation.

Why processes from a forking host rather than `multiprocessing`: an environment must start from a clean slate (no
variables of the test or `billmig local up` process, no re-run of its `__main__`), libraries imported once are
shared copy-on-write so a cold start costs only the function's own init, and a JSON wire keeps the boundary plain.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from billmig_local.clock import WorldClock

DEFAULT_CONCURRENCY = 10
# Imported once by the runtime host, before any environment forks from it: what most functions import anyway, and
# the AWS clients they build (`client:SERVICE`, warmed on boto3's default session).
DEFAULT_PRELOAD = (
    "boto3",
    "botocore.session",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.typing",
    "aws_xray_sdk",
    # What Powertools' Tracer imports: ~120 ms of every environment's init otherwise. Its recorder, made at import in
    # the host's environment (not Lambda's), is never used: tracing is off locally (POWERTOOLS_TRACE_DISABLED).
    "aws_xray_sdk.core",
    "stripe",
    "stigg",
    "httpx",
    "httpcore",  # httpx imports it on a client's first transport
    # The Metronome SDK loads its resources and their pydantic types on first use, and builds a model's validator on
    # its first response: ~0.4 s and ~0.25 s of CPU in every new environment of the Metronome steps and the router,
    # unless the host has them already (`models:` builds every model of the package).
    "metronome",
    "metronome.resources.v1",
    "metronome.resources.v2",
    "models:metronome.types",
    "client:dynamodb",
    "client:s3",
    "client:secretsmanager",
    "client:sqs",
)
INIT_SECONDS = 10.0  # Lambda's limit on the init phase, on top of the function's timeout on a cold start
_EXIT_STATUS_SECONDS = 5.0
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")


@dataclass
class LambdaFault:
    """Make a function fail as if its code raised `error` (a class name), before or after the handler runs.

    `when="after"` runs the handler and then fails: the crash-after-side-effect case that resumability must survive.
    """

    function: str  # the function name, or a substring of it
    error: str = "VendorUnavailable"
    message: str = "injected by the local Lambda bridge"
    times: int = 1
    when: str = "before"


class Throttled(Exception):
    """The function's pool is at its concurrency limit: Lambda's `TooManyRequestsException`."""

    def __init__(self, function_name: str, limit: int, *, reserved: bool) -> None:
        super().__init__(f"Rate Exceeded. ({function_name}: {limit} concurrent executions)")
        self.function_name = function_name
        self.limit = limit
        self.reason = (
            "ReservedFunctionConcurrentInvocationLimitExceeded" if reserved else "ConcurrentInvocationLimitExceeded"
        )


class _RuntimeHost:
    """The `lambda_runtime` host process, and what it reports: the pids it forked and their exit statuses."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this package's module, no shell
            [sys.executable, "-P", "-m", "billmig_local.lambda_runtime", str(theirs.fileno()), *preload],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self._send_lock = threading.Lock()
        self._changed = threading.Condition()
        self._spawned: dict[str, int] = {}
        self._exits: dict[int, int] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="lambda-runtime-host", daemon=True)
        self._reader.start()

    def spawn(self, worker_id: str, spec: dict[str, Any]) -> tuple[int, socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._send_lock:
                socket.send_fds(self._control, [json.dumps({"spawn": worker_id, **spec}).encode()], [theirs.fileno()])
        except OSError as exc:
            ours.close()
            raise RuntimeError(f"the Lambda runtime host is gone ({exc})") from exc
        finally:
            theirs.close()
        with self._changed:
            if not self._changed.wait_for(lambda: worker_id in self._spawned or self._closed, timeout=60):
                ours.close()
                raise RuntimeError("the Lambda runtime host did not start an execution environment within 60 s")
            if worker_id not in self._spawned:
                ours.close()
                raise RuntimeError("the Lambda runtime host is gone")
            return self._spawned.pop(worker_id), ours

    def exit_status(self, pid: int, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._closed, timeout=timeout)
            return self._exits.pop(pid, None)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        self._control.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _read(self) -> None:
        try:
            while True:
                data = self._control.recv(1 << 16)
                if not data:
                    break
                message = json.loads(data)
                with self._changed:
                    if "spawned" in message:
                        self._spawned[message["spawned"]] = int(message["pid"])
                    elif "exited" in message:
                        self._exits[int(message["exited"])] = int(message["status"])
                    self._changed.notify_all()
        except OSError:
            pass
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()


@dataclass
class _Environment:
    """The bridge's handle on one execution environment."""

    pid: int
    sock: socket.socket
    reader: BinaryIO
    fingerprint: str
    log_stream: str
    alive: bool = True

    def kill(self) -> None:
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass
class _Pool:
    fingerprint: str = ""
    idle: list[_Environment] = field(default_factory=list)
    busy: int = 0
    started: int = 0


@dataclass
class _Outcome:
    request_id: str
    payload: str
    errored: bool
    logs: list[str]
    duration_ms: float


class LambdaBridge:
    def __init__(
        self,
        *,
        cache_dir: Path,
        endpoint_url: str,
        region: str,
        clock: WorldClock | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        preload: tuple[str, ...] = DEFAULT_PRELOAD,
    ) -> None:
        self.cache_dir = cache_dir
        self.endpoint_url = endpoint_url
        self.region = region
        self.clock = clock
        self.concurrency = concurrency
        self.faults: list[LambdaFault] = []
        self.invocations = 0
        self._preload = preload
        self._host: _RuntimeHost | None = None
        self._lock = threading.Lock()
        self._extract_lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._closed = False

    def start(self) -> LambdaBridge:
        """Start the runtime host now, so its imports overlap with whatever the caller does next."""
        with self._lock:
            if self._host is None and not self._closed:
                self._host = _RuntimeHost(self._preload)
        return self

    def close(self) -> None:
        """End every execution environment and the runtime host."""
        with self._lock:
            self._closed = True
            pools, self._pools = self._pools, {}
            host, self._host = self._host, None
        for pool in pools.values():
            for environment in pool.idle:
                environment.close()
        if host is not None:
            host.close()

    def environments(self, function_name: str) -> int:
        """How many execution environments a function has started so far (warm ones are reused first)."""
        with self._lock:
            pool = self._pools.get(function_name)
            return pool.started if pool is not None else 0

    # ------------------------------------------------------------------------------------------------------------
    def invoke(self, function: Any, event: str | bytes | dict[str, Any] | None) -> tuple[str, bool, str]:
        """moto's `_invoke_lambda` contract: (response payload, errored, logs). Raises `Throttled` at the limit."""
        payload = _decode_event(event)
        with self._lock:
            self.invocations += 1
        fault = self._take_fault(function.function_name, "before")
        if fault is not None:
            return _error_payload(fault.error, fault.message), True, ""
        spec = self._spec(function)
        environment = self._acquire(function, spec)
        try:
            outcome = self._run(environment, function, payload)
        finally:
            self._release(function.function_name, environment)
        if not outcome.errored:
            fault = self._take_fault(function.function_name, "after")
            if fault is not None:
                outcome.errored, outcome.payload = True, _error_payload(fault.error, fault.message)
        self._save_logs(function, environment, outcome)
        return outcome.payload, outcome.errored, "".join(outcome.logs)

    # ------------------------------------------------------------------------------------------------------------
    def _acquire(self, function: Any, spec: dict[str, Any]) -> _Environment:
        name = function.function_name
        reserved = function.reserved_concurrency
        limit = int(reserved) if reserved not in (None, "") else self.concurrency
        fingerprint = json.dumps(spec, sort_keys=True)
        with self._lock:
            if self._closed:
                raise RuntimeError("the local Lambda bridge is closed")
            pool = self._pools.setdefault(name, _Pool())
            if pool.fingerprint != fingerprint:  # new code or configuration: old environments are not reused
                for stale in pool.idle:
                    stale.close()
                pool.idle.clear()
                pool.fingerprint = fingerprint
            if pool.idle:
                pool.busy += 1
                return pool.idle.pop()
            if pool.busy >= limit:
                raise Throttled(name, limit, reserved=reserved not in (None, ""))
            pool.busy += 1
            pool.started += 1
            if self._host is None:
                self._host = _RuntimeHost(self._preload)
            host = self._host
        try:
            worker_id = uuid.uuid4().hex
            pid, sock = host.spawn(worker_id, spec)
        except BaseException:
            with self._lock:
                pool.busy -= 1
            raise
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{function.version}]{worker_id}"
        return _Environment(pid, sock, sock.makefile("rb"), fingerprint, stream)

    def _release(self, function_name: str, environment: _Environment) -> None:
        with self._lock:
            pool = self._pools.get(function_name)
            if pool is not None:
                pool.busy -= 1
            if pool is not None and environment.alive and environment.fingerprint == pool.fingerprint:
                pool.idle.append(environment)
                return
        if environment.alive:
            environment.close()

    def _run(self, environment: _Environment, function: Any, payload: Any) -> _Outcome:
        request_id = str(uuid.uuid4())
        timeout = float(function.timeout or 3)
        request = {
            "invoke": request_id,
            "event": payload,
            "timeout_ms": int(timeout * 1000),
            "clock_offset": self.clock.now() - time.time() if self.clock is not None else 0.0,
            "context": {
                "function_name": function.function_name,
                "function_version": str(function.version),
                "invoked_function_arn": function.function_arn,
                "memory_limit_in_mb": int(function.memory_size or 128),
                "log_group_name": function.logs_group_name,
                "log_stream_name": environment.log_stream,
            },
        }
        logs: list[str] = [f"START RequestId: {request_id} Version: {function.version}\n"]
        began = time.monotonic()
        deadline = began + timeout + INIT_SECONDS
        try:
            environment.sock.sendall((json.dumps(request) + "\n").encode())
            while True:
                environment.sock.settimeout(max(0.001, deadline - time.monotonic()))
                line = environment.reader.readline()
                if not line:
                    return self._exited(environment, request_id, logs, began)
                message = json.loads(line)
                if "log" in message:
                    logs.append(message["log"])
                elif "started" in message:
                    began = time.monotonic()
                    deadline = began + timeout
                elif "result" in message:
                    if message.get("fatal"):
                        environment.close()
                    return _Outcome(request_id, message["result"], bool(message["errored"]), logs, _ms_since(began))
        except TimeoutError:
            environment.kill()
            text = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            logs.append(f"{datetime.now(UTC).isoformat()} {text}\n")
            return _Outcome(request_id, _error_payload("Sandbox.Timedout", text), True, logs, _ms_since(began))
        except (OSError, ValueError):
            return self._exited(environment, request_id, logs, began)

    def _exited(self, environment: _Environment, request_id: str, logs: list[str], began: float) -> _Outcome:
        environment.close()
        host = self._host
        status = host.exit_status(environment.pid, _EXIT_STATUS_SECONDS) if host is not None else None
        if status is None:
            how = "unknown exit status"
        elif status >= 0:
            how = f"exit status {status}"
        else:
            how = f"signal: {signal.Signals(-status).name}"
        text = f"RequestId: {request_id} Error: Runtime exited with error: {how}"
        logs.append(text + "\n")
        return _Outcome(request_id, _error_payload("Runtime.ExitError", text), True, logs, _ms_since(began))

    def _save_logs(self, function: Any, environment: _Environment, outcome: _Outcome) -> None:
        lines = "".join(outcome.logs).splitlines()
        lines.append(f"END RequestId: {outcome.request_id}")
        lines.append(
            f"REPORT RequestId: {outcome.request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
            f"Memory Size: {int(function.memory_size or 128)} MB"
        )
        now = int(time.time() * 1000)
        with contextlib.suppress(Exception):
            backend = function.logs_backend
            backend.ensure_log_group(function.logs_group_name)
            group = backend.groups[function.logs_group_name]
            if environment.log_stream not in group.streams:
                backend.create_log_stream(function.logs_group_name, environment.log_stream)
            backend.put_log_events(
                function.logs_group_name,
                environment.log_stream,
                [{"timestamp": now, "message": line} for line in lines if line],
            )

    # ------------------------------------------------------------------------------------------------------------
    def _take_fault(self, function_name: str, when: str) -> LambdaFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.when == when and fault.times > 0 and fault.function in function_name:
                    fault.times -= 1
                    return fault
        return None

    def _spec(self, function: Any) -> dict[str, Any]:
        """What an environment of this function starts from: its variables, import path and handler."""
        code_dir = self._extract(function.code_bytes, "code", function.code_sha_256)
        layer_dirs = [
            self._extract(layer.code_bytes, "layers", layer.code_sha_256) / "python" for layer in _layers_of(function)
        ]
        return {
            "env": self._environment_for(function, code_dir),
            "path": [str(code_dir), *(str(d) for d in layer_dirs)],
            "handler": function.handler,
        }

    def _extract(self, data: bytes, kind: str, digest: str) -> Path:
        target = self.cache_dir / kind / (digest or "empty").replace("/", "_").replace("+", "-")[:40]
        with self._extract_lock:
            if not target.exists():
                staging = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    archive.extractall(staging)
                try:
                    staging.rename(target)
                except OSError:  # another process extracted the same digest first
                    shutil.rmtree(staging, ignore_errors=True)
        return target

    def _environment_for(self, function: Any, code_dir: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
                "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time or 'python3.11'}",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "TZ": ":UTC",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                # No X-Ray daemon locally; everything else of Powertools runs as on AWS.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        env.update({k: str(v) for k, v in (function.environment_vars or {}).items()})
        return env


def _ms_since(began: float) -> float:
    return (time.monotonic() - began) * 1000


def _layers_of(function: Any) -> list[Any]:
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[function.account_id][function.region]
    return [backend.layers_versions_by_arn(layer["Arn"]) for layer in function.layers]


def _decode_event(event: str | bytes | dict[str, Any] | None) -> Any:
    if event is None or event in (b"", ""):
        return {}
    if isinstance(event, bytes):
        event = event.decode("utf-8")
    return json.loads(event) if isinstance(event, str) else event


def _error_payload(error_type: str, message: str, trace: str = "") -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace.splitlines()})
