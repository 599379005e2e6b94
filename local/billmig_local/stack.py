"""The local AWS: moto's server on 127.0.0.1 with the project's own template deployed, plus the vendor emulators.

`billmig local up` runs one of these in the foreground. Tests run one per session in-process. Anything that speaks
boto3 reaches it through the standard `AWS_ENDPOINT_URL`; `/_billmig/*` on the same port is the local control plane
(the world clock, Lambda fault injection, endpoints).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from threading import Lock, Thread
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from billmig_local import moto_patches
from billmig_local.clock import ClockMovedBackwards, WorldClock, parse_duration, parse_instant, to_rfc3339
from billmig_local.emulators import EMULATOR_NAMES, available_emulators, stack_wirings
from billmig_local.emulators.metronome.stripe_delivery import STRIPE_URL_ENV as METRONOME_STRIPE_URL_ENV
from billmig_local.emulators.own_process import start_in_own_process
from billmig_local.emulators.server import RunningEmulator
from billmig_local.execution_feed import ExecutionFeed
from billmig_local.lambda_bridge import DEFAULT_CONCURRENCY, LambdaBridge, LambdaFault
from billmig_local.packaging import load_template, package, translate
from billmig_local.schedule_runner import Firing, ScheduleRunner
from billmig_local.sqs_poller import PolledBatch, SqsPoller

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROL_PREFIX = "/_billmig/"
ARTIFACT_BUCKET = "billmig-local-artifacts"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# Locally a retry of an undelivered usage event comes round in seconds (moto's visibility timeout is on the host
# clock, and the local poller runs one batch at a time, so a short timeout never overlaps an invocation).
LOCAL_PARAMETERS = {"UsageQueueVisibilityTimeout": "2", "ParityScheduleState": "DISABLED"}


@dataclass
class StackSettings:
    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path = REPO_ROOT / ".local"
    template: Path = REPO_ROOT / "template.yaml"
    stack_name: str = "billmig"
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=lambda: {"Stage": "local"})
    retry_scale: float = 0.0
    # Execution environments per function when the template sets no ReservedConcurrentExecutions; past them,
    # an invocation is throttled (Lambda.TooManyRequestsException), as at Lambda's concurrency limit.
    lambda_concurrency: int = DEFAULT_CONCURRENCY
    emulators: Iterable[str] = EMULATOR_NAMES
    # Emulators served from processes of their own (`emulators.own_process`), off this process's GIL: a benchmark
    # at the vendors' limits then measures the orchestration, not the emulators sharing its interpreter.
    emulator_processes: Iterable[str] = ()
    feed: Callable[[str], None] | None = None
    console: bool = True  # the read-only state machine console (billmig_cli.console), on its own port


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug formats (and colours) every request's log line before its logger drops it at WARNING: one in forty
    of the stack's CPU cycles under load. The line is made only when someone reads it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if logging.getLogger("werkzeug").isEnabledFor(logging.INFO):
            super().log_request(code, size)


class LocalStack:
    def __init__(self, settings: StackSettings | None = None, *, clock: WorldClock | None = None) -> None:
        self.settings = settings or StackSettings()
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock or WorldClock(self.settings.state_dir / "clock.json")
        self.emulators: dict[str, RunningEmulator] = {}
        self.outputs: dict[str, str] = {}
        self.bridge: LambdaBridge | None = None
        self.scheduler: ScheduleRunner | None = None
        self.poller: SqsPoller | None = None
        self._feed: ExecutionFeed | None = None
        self.console: Any = None
        self._server: BaseWSGIServer | None = None
        self._thread: Thread | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = Lock()

    # ----------------------------------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self.settings.host}:{self._server.server_port}"

    def client(self, service: str) -> Any:
        """One client per service, shared (botocore clients are thread-safe): building one costs ~13 ms of CPU, and
        the schedule runner asks for two every second."""
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                found = self._clients[service] = boto3.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint,
                    region_name=self.settings.region,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                    **LOCAL_CREDENTIALS,
                )
            return found

    def endpoints(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {"aws": self.endpoint}
        for name in EMULATOR_NAMES:
            found[name] = self.emulators[name].url if name in self.emulators else None
        found["console"] = self.console.url if self.console is not None else None
        return found

    # ----------------------------------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self.settings.host, self.settings.port, self._wsgi(app), threaded=True, request_handler=_QuietRequestHandler
        )
        # moto's Step Functions executor reaches Lambda at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self._server.server_port)
        self.bridge = LambdaBridge(
            cache_dir=self.settings.state_dir / "lambda",
            endpoint_url=self.endpoint,
            region=self.settings.region,
            clock=self.clock,
            concurrency=self.settings.lambda_concurrency,
        ).start()
        moto_patches.install(clock=self.clock, bridge=self.bridge, retry_scale=self.settings.retry_scale)
        self._thread = Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()

        self._start_emulators()
        self.deploy()
        self._store_local_secrets()
        if self.settings.console:
            from billmig_cli.console.server import ConsoleServer

            self.console = ConsoleServer(self.client, stack_name=self.settings.stack_name, local=True).start()
        self._write_endpoints()
        self.scheduler = ScheduleRunner(clock=self.clock, clients=self.client, on_fire=self._announce_firing)
        self.scheduler.start()
        self.poller = SqsPoller(clients=self.client, on_batch=self._announce_batch)
        self.poller.start()
        if self.settings.feed is not None:
            self._feed = ExecutionFeed(self.client("stepfunctions"), self.settings.feed)
            self._feed.start()
        return self

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
        if self._feed is not None:
            self._feed.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.poller is not None:
            self.poller.stop()
        for emulator in self.emulators.values():
            emulator.server.stop()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.bridge is not None:
            self.bridge.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------------------------
    def deploy(self) -> dict[str, str]:
        """Package, translate and create the stack, exactly from `template.yaml`."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)

        def upload(key: str, data: bytes) -> str:
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=data)
            return f"s3://{ARTIFACT_BUCKET}/{key}"

        template = package(load_template(self.settings.template), self.settings.template.parent, upload)
        parameters = {**self.emulator_parameters(), **LOCAL_PARAMETERS, **self.settings.parameters}
        translated = translate(template, parameters)
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=self.settings.stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=self.settings.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"local stack {self.settings.stack_name}: {stack['StackStatus']}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return self.outputs

    def emulator_parameters(self) -> dict[str, str]:
        """Template parameters that point the functions at the emulators instead of the vendors."""
        parameters: dict[str, str] = {}
        for name, wiring in stack_wirings().items():
            if name in self.emulators:
                parameters.update(wiring.template_parameters(self.emulators[name].url))
        return parameters

    def _store_local_secrets(self) -> None:
        """The emulators accept any key; the functions still read theirs from Secrets Manager, as on AWS."""
        secrets = self.client("secretsmanager")
        for name, wiring in stack_wirings().items():
            secret = wiring.local_secret
            secret_name = self.outputs.get(secret.output) if secret is not None else None
            if secret is None or not secret_name or name not in self.emulators:
                continue
            try:
                secrets.describe_secret(SecretId=secret_name)
            except secrets.exceptions.ResourceNotFoundException:
                secrets.create_secret(
                    Name=secret_name, SecretString=secret.value, Description="billmig local stack (emulators)"
                )

    def _start_emulators(self) -> None:
        own_process = set(self.settings.emulator_processes)
        for name, start in available_emulators().items():
            if name not in self.settings.emulators:
                continue
            if name in own_process:
                # the Stripe emulator starts first: a Metronome in its own process is pointed at it from birth
                environment = (
                    {METRONOME_STRIPE_URL_ENV: self.emulators["stripe"].url} if "stripe" in self.emulators else {}
                )
                self.emulators[name] = start_in_own_process(
                    name, clock=self.clock, state_dir=self.settings.state_dir, environment=environment
                )
                continue
            self.emulators[name] = start(clock=self.clock, state_dir=self.settings.state_dir)
        # Metronome delivers billable invoices (and gated auto-recharges) to the Stripe emulator when one runs
        if "metronome" in self.emulators and "stripe" in self.emulators:
            connect_stripe = self.emulators["metronome"].extra.get("connect_stripe")
            if connect_stripe is not None:
                connect_stripe(self.emulators["stripe"].url)

    def _write_endpoints(self) -> None:
        """Written whole, then renamed into place: a CLI command run while the stack starts reads the file as soon as
        it exists, and must never see it empty or half-written."""
        path = self.settings.state_dir / "endpoints.json"
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        os.replace(partial, path)

    def _announce_firing(self, firing: Firing) -> None:
        if self.settings.feed is not None:
            self.settings.feed(f"schedule {firing.schedule} fired for {to_rfc3339(firing.at.timestamp())}")

    def _announce_batch(self, batch: PolledBatch) -> None:
        if self.settings.feed is not None and (batch.errored or batch.deleted < batch.received):
            self.settings.feed(
                f"sqs batch to {batch.function_arn.rsplit(':', 1)[-1]}: {batch.received} received, "
                f"{batch.deleted} delivered{' (function failed)' if batch.errored else ''}"
            )

    # ----------------------------------------------------------------------------------------------------------------
    def move_clock(self, *, advance: float | None = None, to: float | None = None) -> dict[str, Any]:
        """Move the whole local world: AWS and emulator clocks, every Stripe test clock, then due schedules."""
        before = self.clock.now()
        # The runner's own thread may fire what the move made due before `tick` below does: report both.
        already = len(self.scheduler.fired) if self.scheduler is not None else 0
        target = before + advance if advance is not None else (to if to is not None else before)
        followed = 0
        if target > before:
            # The Stripe test clocks first: a Wait the move ends wakes a Task at once, and that Task must find a
            # test-clock customer's Stripe already at the new instant (a subscription ended "now" ends then).
            for name, wiring in stack_wirings().items():
                if wiring.on_clock_moved is not None and name in self.emulators:
                    followed += wiring.on_clock_moved(self.emulators[name].url, target - before, target)
        # (the world also runs on in real time meanwhile: never set it behind where it got to)
        after = self.clock.set(max(target, self.clock.now()))
        moved = after - before
        if self.scheduler is not None:
            self.scheduler.tick()
            fired = list(self.scheduler.fired[already:])
        else:
            fired = []
        return {
            "now": after,
            "iso": to_rfc3339(after),
            "moved_seconds": moved,
            "stripe_test_clocks_advanced": followed,
            "fired": [
                {"schedule": f.schedule, "at": f.at.isoformat(), "execution_arn": f.execution_arn} for f in fired
            ],
        }

    def _wsgi(self, moto_app: Any) -> Callable[..., Any]:
        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if not environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
                return moto_app(environ, start_response)
            return self._control(Request(environ))(environ, start_response)

        return application

    def _control(self, request: Request) -> Response:
        what = request.path[len(CONTROL_PREFIX) :].strip("/")
        body = request.get_json(silent=True) or {}
        try:
            if what == "clock" and request.method == "GET":
                return _json({"now": self.clock.now(), "iso": to_rfc3339(self.clock.now())})
            if what == "clock" and request.method == "POST":
                if "advance" in body:
                    value = body["advance"]
                    seconds = parse_duration(value) if isinstance(value, str) else float(value)
                    return _json(self.move_clock(advance=seconds))
                if "set" in body:
                    value = body["set"]
                    return _json(self.move_clock(to=parse_instant(value) if isinstance(value, str) else float(value)))
                return _json({"error": 'POST /_billmig/clock takes {"advance": D} or {"set": T}'}, 400)
            if what == "endpoints":
                return _json(self.endpoints())
            if what == "outputs":
                return _json(self.outputs)
            if what == "lambda-faults" and self.bridge is not None:
                if request.method == "POST":
                    self.bridge.faults.append(LambdaFault(**body))
                elif request.method == "DELETE":
                    self.bridge.faults.clear()
                return _json({"faults": [asdict(f) for f in self.bridge.faults]})
        except (ClockMovedBackwards, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"error": f"no control endpoint {request.method} {request.path}"}, 404)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
