"""Small, named patches that close moto 5.2.5's gaps for deploying and running this project's template.

Each patch says what moto lacks and why we need it; `install(...)` applies them all once per process, and each has a
test in `tests/integration/test_moto_patches.py` that fails without it. moto is pinned exactly because these reach into
its internals; a moto upgrade means re-checking every one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from billmig_local.clock import WorldClock
from billmig_local.lambda_bridge import LambdaBridge, Throttled


@dataclass(frozen=True)
class Patch:
    name: str
    gap: str
    apply: Callable[[], None]


@dataclass
class _Runtime:
    clock: WorldClock | None = None
    bridge: LambdaBridge | None = None
    retry_scale: float = 0.0
    # How many `Wait` states and retry back-offs are parked on the world clock right now: what a test or an
    # operator checks to see that an execution waits for the clock rather than for the host.
    parked: dict[str, int] = field(default_factory=lambda: {"wait": 0, "retry": 0})
    parked_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def park(self, kind: str) -> Iterator[None]:
        with self.parked_lock:
            self.parked[kind] += 1
        try:
            yield
        finally:
            with self.parked_lock:
                self.parked[kind] -= 1


RUNTIME = _Runtime()
_installed: set[str] = set()
_install_lock = threading.Lock()


# --------------------------------------------------------------------------------------------------------------------
def _lambda_bridge() -> None:
    from moto.awslambda import models as lambda_models

    function_model: Any = lambda_models.LambdaFunction

    from moto.core.exceptions import JsonRESTError

    class TooManyRequestsException(JsonRESTError):
        """Lambda's answer at a function's concurrency limit: HTTP 429, which botocore and Step Functions see."""

        code = 429

        def __init__(self, throttled: Throttled) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")
            self.description = json.dumps(
                {"__type": "TooManyRequestsException", "message": "Rate Exceeded.", "Reason": throttled.reason}
            )

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if RUNTIME.bridge is None:
            raise RuntimeError("the local Lambda bridge is not configured (billmig_local.moto_patches.install)")
        try:
            return RUNTIME.bridge.invoke(self, event)
        except Throttled as throttled:
            raise TooManyRequestsException(throttled) from throttled

    function_model._invoke_lambda = _invoke_lambda


def _lambda_task_service_errors() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.eval.event import event_detail

    details: Any = event_detail.EventDetails  # a TypedDict with every kind of detail; a failure has only one
    task_model: Any = state_task_lambda.StateTaskLambda
    original = task_model._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent

        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=details(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
            ),
        )

    task_model._from_error = _from_error


def _lambda_tasks_in_process() -> None:
    from botocore.exceptions import ClientError
    from moto.awslambda.models import lambda_backends
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils._invoke_lambda_function
    passed = {"FunctionName", "Payload", "Qualifier"}

    def _invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        """A synchronous Task invocation of a function ARN goes straight to the Lambda backend in this process,
        as the HTTP round trip would end there: same payload, `FunctionError` and API errors (as `ClientError`,
        so `lambda_task_service_errors` names them), without a botocore request, a TCP connection and a
        werkzeug thread per Task. Anything else (a name, an invocation type, a log type) takes moto's path."""
        arn = str(parameters.get("FunctionName", ""))
        fields = arn.split(":")
        if set(parameters) - passed or len(fields) < 7 or fields[2] != "lambda":
            return dict(original(parameters=parameters, region=region, state_credentials=state_credentials))
        headers: dict[str, str] = {}
        try:
            function = lambda_backends[fields[4]][fields[3]].get_function(arn, parameters.get("Qualifier"))
            body = function.invoke(parameters.get("Payload") or b"", {}, headers)  # type: ignore[arg-type]
        except JsonRESTError as exc:
            raise _client_error(exc.error_type, exc.message, exc.code) from exc
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": str(function.version),
            "Payload": lambda_eval_utils._from_payload(io.BytesIO(body if isinstance(body, bytes) else body.encode())),
        }
        if "x-amz-function-error" in headers:
            response["FunctionError"] = headers["x-amz-function-error"]
        return response

    def _client_error(code: str, message: str, status: int) -> ClientError:
        metadata: Any = {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())}
        return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}, "Invoke")

    patched: Any = lambda_eval_utils
    patched._invoke_lambda_function = _invoke_lambda_function


def _task_clients_reused() -> None:
    import sys

    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils  # noqa: F401
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        """One client per region, service and endpoint: botocore clients are thread-safe, and they all carry the
        same dummy keys whatever the credentials."""
        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region=region, service=service, state_credentials=state_credentials)
            return client

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def _json_paths_parsed_once() -> None:
    import functools

    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # Parsed expressions are never mutated by `find`/`update`, so one per path string serves every thread.
    for module in (json_path, result_path):
        patched: Any = module
        patched.parse = functools.lru_cache(maxsize=4096)(patched.parse)


def _request_routing_cached() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatcher: Any = DomainDispatcherApplication
    original = dispatcher.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        """The backend for a host never changes: match the patterns once per host, not on every request."""
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    dispatcher.get_backend_for_host = get_backend_for_host


def _response_actions_listed_once() -> None:
    from moto.core import responses

    module: Any = responses
    original = module.method_names_from_class
    listed: dict[type, frozenset[str]] = {}

    def method_names_from_class(clazz: Any) -> frozenset[str]:
        """A response class's methods are fixed once the patches are in: list them once per class."""
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = frozenset(original(clazz))
        return names

    module.method_names_from_class = method_names_from_class


def _state_machines_in_executing_backend() -> None:
    from moto.stepfunctions import models as sfn_models

    state_machine: Any = sfn_models.StateMachine
    from moto.stepfunctions.responses import get_backend

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        return backend.create_state_machine(
            properties.get("StateMachineName", resource_name),
            properties.get("DefinitionString", ""),
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
        )

    def delete(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    state_machine.create_from_cloudformation_json = classmethod(create)
    state_machine.delete_from_cloudformation_json = classmethod(delete)


def _definition_substitutions() -> None:
    from moto.stepfunctions import models as sfn_models

    state_machine: Any = sfn_models.StateMachine

    original = state_machine.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        definition = properties.get("DefinitionString", "")
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        properties["DefinitionString"] = definition
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    state_machine.create_from_cloudformation_json = classmethod(create)


def _layer_versions() -> None:
    from moto.awslambda import models as lambda_models

    layer_version: Any = lambda_models.LayerVersion

    layer_version.physical_resource_id = property(lambda self: self.arn)
    original = layer_version.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        name = cloudformation_json["Properties"].get("LayerName", resource_name)
        return original(cls, name, cloudformation_json, account_id, region_name, **kwargs)

    layer_version.create_from_cloudformation_json = classmethod(create)


def _function_layers() -> None:
    from moto.awslambda import models as lambda_models

    function_model: Any = lambda_models.LambdaFunction

    original = function_model.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        function = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        layers = cloudformation_json["Properties"].get("Layers") or []
        if layers:
            function.layers = function._get_layers_data(layers)
        return function

    function_model.create_from_cloudformation_json = classmethod(create)


def _scheduler_schedules() -> None:
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.scheduler.models import scheduler_backends

    class SchedulerSchedule(CloudFormationModel):
        """`AWS::Scheduler::Schedule` (SAM `ScheduleV2`) created through the Scheduler backend."""

        def __init__(self, schedule: Any) -> None:
            self.schedule = schedule

        @property
        def physical_resource_id(self) -> str:
            return str(self.schedule.name)

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Scheduler::Schedule"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            return self.schedule.arn

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> SchedulerSchedule:
            p = cloudformation_json["Properties"]
            backend = scheduler_backends[account_id][region_name]
            return cls(
                backend.create_schedule(
                    description=p.get("Description", ""),
                    end_date=p.get("EndDate"),
                    flexible_time_window=p.get("FlexibleTimeWindow", {"Mode": "OFF"}),
                    group_name=p.get("GroupName", "default"),
                    kms_key_arn=p.get("KmsKeyArn"),
                    name=p.get("Name", resource_name),
                    schedule_expression=p["ScheduleExpression"],
                    schedule_expression_timezone=p.get("ScheduleExpressionTimezone", "UTC"),
                    start_date=p.get("StartDate"),
                    state=p.get("State", "ENABLED"),
                    target=p["Target"],
                    action_after_completion=p.get("ActionAfterCompletion"),
                )
            )

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            p = cloudformation_json["Properties"]
            scheduler_backends[account_id][region_name].delete_schedule(p.get("GroupName", "default"), resource_name)

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def _table_point_in_time_recovery() -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table

    table_model: Any = Table
    original = table_model.create_from_cloudformation_json.__func__

    def create(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        table = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        recovery = cloudformation_json["Properties"].get("PointInTimeRecoverySpecification") or {}
        if recovery.get("PointInTimeRecoveryEnabled"):
            dynamodb_backends[account_id][region_name].update_continuous_backups(table.name, recovery)
        return table

    table_model.create_from_cloudformation_json = classmethod(create)


def _execution_names() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    backend: Any = StepFunctionsParserBackend
    original = backend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    backend.start_execution = start_execution


def _map_runs_of_a_starting_execution() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    backend: Any = StepFunctionsParserBackend
    original = backend.list_map_runs

    def list_map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
        worker = self.describe_execution(execution_arn=execution_arn).exec_worker
        if worker is None or worker.env is None:  # started, its interpreter not yet built: no Map has run
            return {"mapRuns": []}
        return dict(original(self, execution_arn))

    backend.list_map_runs = list_map_runs


def _waits_on_world_clock() -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp, wait_function
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    def _get_wait_seconds(self: Any, env: Any) -> int:
        self.string.eval(env=env)
        text: str = env.stack.pop()
        instant = self._from_timestamp_string(timestamp=text)
        if instant is None:
            from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
                FailureEventException,
            )

            raise FailureEventException(self._create_failure_event(env, text))
        return int(instant.replace(tzinfo=dt.UTC).timestamp() - _clock().now())

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        clock = _clock()
        target = clock.now() + wait_seconds
        if clock.now() >= target:
            return
        with RUNTIME.park("wait"):
            clock.wait_for(lambda: not env.is_running(), target)

    def woken(method: Callable[..., None]) -> Callable[..., None]:
        def changed(self: Any, *args: Any, **kwargs: Any) -> None:
            method(self, *args, **kwargs)
            _clock().wake()  # a stopped execution's Waits end now, not at their instant

        return changed

    timestamp_model: Any = timestamp.Timestamp
    wait_model: Any = wait_function.WaitFunction
    timestamp_model._get_wait_seconds = _get_wait_seconds
    wait_model._wait_interval = _wait_interval
    for name in ("set_ended", "set_error", "set_timed_out", "set_stop"):
        setattr(Environment, name, woken(getattr(Environment, name)))


def _retries_on_world_clock() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _WorldClockTime:
        """Stands in for the `time` module inside the retrier: back-off is measured on the world clock."""

        @staticmethod
        def sleep(seconds: float) -> None:
            scaled = seconds * RUNTIME.retry_scale
            if scaled > 0:
                clock = _clock()
                with RUNTIME.park("retry"):
                    clock.wait_until(clock.now() + scaled)

    retrier_module: Any = retrier_decl
    retrier_module.time = _WorldClockTime


def _routers_built_one_at_a_time() -> None:
    """moto builds a service's werkzeug router on its first request; two first requests at once build it in two
    threads, and CPython 3.11.7's AST constructor is not thread-safe (`SystemError: AST constructor recursion depth
    mismatch`, fixed in 3.11.8), which failed a request now and then. One lock around the (one-time) build."""
    from moto.core.routing import ServiceOperationRouter

    build = ServiceOperationRouter._get_router
    lock = threading.Lock()

    def get_router(self: ServiceOperationRouter, protocol: str) -> Any:
        with lock:
            return build(self, protocol)

    ServiceOperationRouter._get_router = get_router  # type: ignore[method-assign]


def _sqs_event_sources_polled() -> None:
    """moto runs an SQS event source mapping inside `send_message`: synchronously, one message per invocation,
    ignoring `ReportBatchItemFailures` and never redriving. The local `SqsPoller` does what Lambda's poller does;
    for that, a queue keeps no mappings of its own (CloudFormation's writes to it go nowhere), so `send_message`
    only enqueues. The mappings stay in the Lambda backend, where `list_event_source_mappings` reads them."""
    from moto.sqs.models import Queue

    def read(_self: Any) -> dict[str, Any]:
        return {}

    def write(_self: Any, _value: Any) -> None:
        pass

    queue: Any = Queue
    queue.lambda_event_source_mappings = property(read, write)


def _sqs_visibility_read_cheaply() -> None:
    """moto decides each message's visibility by building datetimes (`unix_time_millis`) for every queued message on
    every receive: about one second per ReceiveMessage with a thousand messages queued, which starves the poller.
    The same instant read as `time.time()` (what `unix_time` computes, without the datetime round trip)."""
    from moto.sqs.models import Message, SQSBackend

    def visible(self: Any) -> bool:
        return bool(time.time() * 1000 > self.visible_at)

    def delayed(self: Any) -> bool:
        return bool(time.time() * 1000 < self.delayed_until)

    message: Any = Message
    message.visible = property(visible)
    message.delayed = property(delayed)

    # Each received message's retention is checked through get_queue_attributes, which computes every attribute,
    # the three message counts over the whole queue included (and once more per name asked): O(queue) per message
    # received. The queue's own retention period, read directly.
    def retained(self: Any, queue_name: str, message: Any) -> bool:
        period = float(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    backend: Any = SQSBackend
    backend.is_message_valid_based_on_retention_period = retained


# The item operations, whose outputs are items (AttributeValue maps) and counts: nothing the model-driven serializer
# renames, flattens or converts, besides the bytes of binary values and the timestamps handled below.
_DYNAMODB_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _dynamodb_items_serialized_directly() -> None:
    """moto serializes every DynamoDB response by walking the operation's output shape attribute by attribute (with
    a shape lookup per AttributeValue): half of the local stack's CPU during the demo's cutover went there, on the
    GIL every Lambda environment's progress reads and writes wait on. An item operation's result is already in the
    wire's shape (DynamoDB's JSON protocol is the structure itself), so it is written as JSON directly; binary values
    base64, as the serializer writes them. Errors and every other operation keep moto's serializer."""
    import base64

    from moto.dynamodb.responses import DynamoResult

    serialize = DynamoResult.execute_result

    def wire(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, set | frozenset):
            return list(value)
        raise TypeError(f"not JSON: {type(value).__name__}")

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        if context.operation_model.name not in _DYNAMODB_ITEM_OPERATIONS or not isinstance(result, dict):
            return serialize(self, context)
        body = json.dumps({k: v for k, v in result.items() if v is not None}, default=wire, separators=(",", ":"))
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    model: Any = DynamoResult
    model.execute_result = execute_result


def _dynamodb_item_sized_once() -> None:
    """moto builds an item attribute by attribute, and each assignment sizes every attribute already there (a
    nested map recursively): quadratic in the attributes, a third of a PutItem's CPU for a progress item. The size
    only grows as attributes are added, so one total at the end raises `ItemSizeTooLarge` exactly when one of the
    running totals would have; later changes to the item keep moto's per-assignment check."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:  # noqa: N807
        self.hash_key = hash_key
        self.range_key = range_key
        built = LimitedSizeDict()
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            dict.__setitem__(built, key, typed)
        if total > 405000:  # moto's limit (DynamoDB's 400 KB, as measured)
            raise ItemSizeTooLarge
        self.attrs = built

    model: Any = Item
    model.__init__ = __init__


def _dynamodb_query_reads_one_partition() -> None:
    """moto answers a query on a table's own key by listing and sorting every item of the table, then keeping the
    partition's: each progress or ledger query costs the whole table, so a parity report over 1,000 customers (four
    reads each) took 200 s, and a query's cost grew with every run the table held. moto keeps the items by partition
    already, so such a query is given that partition alone; moto's own code then filters and orders it by the range
    key as before. Queries on an index keep the full listing (an index is not stored by its key)."""
    from moto.dynamodb.models.table import Table

    partition = threading.local()
    query, all_items = Table.query, Table.all_items

    def items_of_partition(self: Any) -> list[Any]:
        table: Any = self
        if getattr(partition, "table", None) is not self:
            return all_items(table)
        bucket = table.items.get(partition.key)  # .get: the store is a defaultdict, never grown by a read
        if bucket is None:
            return []
        return list(bucket.values()) if table.range_key_attr else [bucket]

    def query_one_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        partition.table, partition.key = self, hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.table = partition.key = None

    model: Any = Table
    model.all_items = items_of_partition
    model.query = query_one_partition


def _clock() -> WorldClock:
    if RUNTIME.clock is None:
        raise RuntimeError("the world clock is not configured (billmig_local.moto_patches.install)")
    return RUNTIME.clock


PATCHES: tuple[Patch, ...] = (
    Patch("lambda_bridge", "moto runs function code only in Docker; none here", _lambda_bridge),
    Patch(
        "lambda_task_service_errors",
        "a Lambda API error on a Task on a function ARN (a throttle) reaches Retry/Catch as `Exception`, "
        "where Step Functions names it `Lambda.<code>` (e.g. Lambda.TooManyRequestsException)",
        _lambda_task_service_errors,
    ),
    Patch(
        "lambda_tasks_in_process",
        "a Task on a function ARN invokes it through botocore and the HTTP server: a signed request, a new TCP "
        "connection and a server thread per Task, CPU that serialised a Map's parallel Tasks on the GIL",
        _lambda_tasks_in_process,
    ),
    Patch(
        "task_clients_reused",
        "every Task builds a new boto3 client (~13 ms of CPU), which serialises a Map's Tasks on the GIL",
        _task_clients_reused,
    ),
    Patch(
        "json_paths_parsed_once",
        "every JSONPath evaluation builds a new parser (ply tables), a tenth of the interpreter's CPU in a Map",
        _json_paths_parsed_once,
    ),
    Patch(
        "request_routing_cached",
        "the server matches every request's host against hundreds of URL patterns, under one lock",
        _request_routing_cached,
    ),
    Patch(
        "state_machines_in_executing_backend",
        "CloudFormation writes state machines to the non-executing backend the API does not read",
        _state_machines_in_executing_backend,
    ),
    Patch("definition_substitutions", "CloudFormation ignores DefinitionSubstitutions", _definition_substitutions),
    Patch("layer_versions", "Ref on a LayerVersion gives None and LayerName is ignored", _layer_versions),
    Patch("function_layers", "a function's Layers are dropped by CloudFormation", _function_layers),
    Patch("scheduler_schedules", "AWS::Scheduler::Schedule is silently not created", _scheduler_schedules),
    Patch(
        "table_point_in_time_recovery",
        "a table's PointInTimeRecoverySpecification is ignored",
        _table_point_in_time_recovery,
    ),
    Patch("execution_names", "an execution started without a name gets ':None' as its name", _execution_names),
    Patch("waits_on_world_clock", "Wait really sleeps on the host clock", _waits_on_world_clock),
    Patch("retries_on_world_clock", "Retry intervals really sleep on the host clock", _retries_on_world_clock),
    Patch(
        "routers_built_one_at_a_time",
        "two first requests to a service build its router in two threads (a CPython 3.11.7 AST race)",
        _routers_built_one_at_a_time,
    ),
    Patch(
        "sqs_event_sources_polled",
        "an SQS event source mapping runs synchronously inside send_message, one message at a time, without "
        "ReportBatchItemFailures or redrive",
        _sqs_event_sources_polled,
    ),
    Patch(
        "dynamodb_items_serialized_directly",
        "every DynamoDB response is serialized attribute by attribute against the output shape (half the stack's "
        "CPU in the demo's cutover, on the GIL the Lambda environments' progress writes wait on)",
        _dynamodb_items_serialized_directly,
    ),
    Patch(
        "dynamodb_item_sized_once",
        "building an item sizes every attribute already set at each attribute (quadratic, recursive into maps): "
        "a third of a PutItem's CPU",
        _dynamodb_item_sized_once,
    ),
    Patch(
        "response_actions_listed_once",
        "every request lists its response class's methods with inspect.getmembers to find the action's handler (a "
        "twentieth of the stack's CPU under the Metronome migration)",
        _response_actions_listed_once,
    ),
    Patch(
        "sqs_visibility_read_cheaply",
        "every receive builds datetimes for every queued message (about 1 s per receive at 1,000 messages), and "
        "counts the whole queue again for each message it returns (its retention check reads every attribute)",
        _sqs_visibility_read_cheaply,
    ),
    Patch(
        "map_runs_of_a_starting_execution",
        "ListMapRuns on an execution whose interpreter has not started yet fails with a 500 (an AttributeError on "
        "its missing environment) instead of listing no Map Run",
        _map_runs_of_a_starting_execution,
    ),
    Patch(
        "dynamodb_query_reads_one_partition",
        "a query on a table's key lists and sorts every item of the table to keep one partition's (a parity report "
        "over 1,000 customers spent 200 s there)",
        _dynamodb_query_reads_one_partition,
    ),
)


def install(
    *, clock: WorldClock, bridge: LambdaBridge | None, retry_scale: float = 0.0, skip: frozenset[str] = frozenset()
) -> None:
    """Apply every patch once per process and point them at this clock and bridge."""
    from moto.core.config import default_user_config

    RUNTIME.clock = clock
    RUNTIME.bridge = bridge
    RUNTIME.retry_scale = retry_scale
    # Keep lambda.use_docker at its default (True): False swaps in a canned-response backend that never runs
    # code. The bridge replaces the Docker call itself.
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    with _install_lock:
        for patch in PATCHES:
            if patch.name not in _installed and patch.name not in skip:
                patch.apply()
                _installed.add(patch.name)


def installed() -> frozenset[str]:
    return frozenset(_installed)
