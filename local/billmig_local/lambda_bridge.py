"""Run deployed Lambda functions in-process, from the very zips CloudFormation deployed (no Docker here).

moto runs function code only in Docker. The bridge takes its place at moto's single invoke hook, so both the Invoke
API and Step Functions tasks reach the function's own code with its own environment and layers. A handler exception
comes back the way real Lambda reports it (`errorType` = the exception's class name), which is what Step Functions
matches `Retry`/`Catch` against.

Invocations are serialised: `os.environ` and `sys.path` are process-wide, and a function's environment must be the
one in force while its code runs. Modules stay loaded between invocations, like a warm container.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

_LOCK = threading.RLock()
CLOCK_OFFSET_VARIABLE = "BILLMIG_CLOCK_OFFSET_SECONDS"  # how far the world clock is ahead: see billmig.world_time


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


@dataclass
class InvocationContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class _InvocationOutput(io.TextIOBase):
    """The stdout/stderr functions see. Loggers bind the stream they find at import, so it must be one lasting
    object; each invocation points it at a fresh buffer, and that buffer becomes the invocation's log.

    Only the invoking thread writes into that buffer: `redirect_stdout` swaps the process-wide `sys.stdout`, and
    other threads (the execution feed of `billmig local up`, for one) must keep printing to the terminal."""

    def __init__(self, fallback: Callable[[], TextIO | None]) -> None:
        super().__init__()
        self.current: io.StringIO | None = None
        self.owner: int | None = None
        self._fallback = fallback

    def write(self, text: str) -> int:
        if self.current is not None and threading.get_ident() == self.owner:
            self.current.write(text)
        else:
            (self._fallback() or io.StringIO()).write(text)
        return len(text)

    def flush(self) -> None:
        stream = self._fallback()
        if stream is not None and (self.current is None or threading.get_ident() != self.owner):
            stream.flush()

    def writable(self) -> bool:
        return True

    def capture(self, buffer: io.StringIO | None) -> None:
        self.current = buffer
        self.owner = threading.get_ident() if buffer is not None else None


class LambdaBridge:
    def __init__(
        self, *, cache_dir: Path, endpoint_url: str, region: str, clock_offset: Callable[[], float] | None = None
    ) -> None:
        self.cache_dir = cache_dir
        self.clock_offset = clock_offset
        self.endpoint_url = endpoint_url
        self.region = region
        self.faults: list[LambdaFault] = []
        self.invocations = 0
        self._modules: dict[tuple[str, str], ModuleType] = {}
        self._stdout = _InvocationOutput(lambda: sys.__stdout__)
        self._stderr = _InvocationOutput(lambda: sys.__stderr__)

    # ------------------------------------------------------------------------------------------------------------
    def invoke(self, function: Any, event: str | bytes | dict[str, Any] | None) -> tuple[str, bool, str]:
        """moto's `_invoke_lambda` contract: (response payload, errored, logs)."""
        payload = _decode_event(event)
        with _LOCK:
            self.invocations += 1
            fault = self._take_fault(function.function_name, "before")
            if fault is not None:
                return _error_payload(fault.error, fault.message), True, ""
            code_dir = self._extract(function.code_bytes, "code", function.code_sha_256)
            layer_dirs = [
                self._extract(layer.code_bytes, "layers", layer.code_sha_256) / "python"
                for layer in _layers_of(function)
            ]
            output = io.StringIO()
            self._stdout.capture(output)
            self._stderr.capture(output)
            errored = False
            with _environment(self._environment_for(function)), _import_path([code_dir, *layer_dirs]):
                try:
                    with contextlib.redirect_stdout(self._stdout), contextlib.redirect_stderr(self._stderr):
                        handler = self._handler(function, code_dir)
                        context = InvocationContext(
                            function_name=function.function_name,
                            function_version=str(function.version),
                            invoked_function_arn=function.function_arn,
                            memory_limit_in_mb=int(function.memory_size or 128),
                            log_group_name=function.logs_group_name,
                        )
                        result = handler(payload, context)
                    response = json.dumps(result)
                except Exception as exc:
                    errored = True
                    response = _error_payload(type(exc).__name__, str(exc), traceback.format_exc())
            self._stdout.capture(None)
            self._stderr.capture(None)
            if not errored:
                fault = self._take_fault(function.function_name, "after")
                if fault is not None:
                    errored, response = True, _error_payload(fault.error, fault.message)
        logs = output.getvalue()
        with contextlib.suppress(Exception):
            function.logs_backend.ensure_log_group(function.logs_group_name)
            function.save_logs(logs + ("\n" if logs and not logs.endswith("\n") else "") + f"RESULT {response}")
        return response, errored, logs

    # ------------------------------------------------------------------------------------------------------------
    def _take_fault(self, function_name: str, when: str) -> LambdaFault | None:
        for fault in self.faults:
            if fault.when == when and fault.times > 0 and fault.function in function_name:
                fault.times -= 1
                return fault
        return None

    def _extract(self, data: bytes, kind: str, digest: str) -> Path:
        target = self.cache_dir / kind / (digest or "empty").replace("/", "_").replace("+", "-")[:40]
        if not target.exists():
            staging = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(staging)
            with contextlib.suppress(OSError):  # another process extracted the same digest first
                staging.rename(target)
        return target

    def _handler(self, function: Any, code_dir: Path) -> Any:
        module_name, _, attribute = function.handler.rpartition(".")
        key = (function.function_name, function.code_sha_256)
        module = self._modules.get(key)
        if module is None:
            source = code_dir / (module_name.replace(".", "/") + ".py")
            unique = f"_billmig_fn_{function.function_name.replace('-', '_')}_{len(self._modules)}"
            spec = importlib.util.spec_from_file_location(unique, source)
            if spec is None or spec.loader is None:
                raise ImportError(f"Unable to import module '{module_name}' from {code_dir}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
            self._modules[key] = module
        return getattr(module, attribute)

    def _environment_for(self, function: Any) -> dict[str, str]:
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            # No X-Ray daemon locally; everything else of Powertools runs as on AWS.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update({k: str(v) for k, v in (function.environment_vars or {}).items()})
        if self.clock_offset is not None:
            env[CLOCK_OFFSET_VARIABLE] = str(self.clock_offset())
        return env


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


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _import_path(folders: list[Path]) -> Iterator[None]:
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
