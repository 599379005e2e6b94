"""Local Lambda execution environments, observed from inside them: concurrency across processes, isolation, warmth,
Lambda's error names for a timeout, a crash and a throttle (and Step Functions retrying them), logs per log group."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from billmig_cli import executions
from billmig_local import moto_patches
from billmig_local.packaging import zip_folder
from billmig_local.stack import LOCAL_CREDENTIALS, LocalStack
from botocore.config import Config
from botocore.exceptions import ClientError
from suite import until

PROBE = zip_folder(Path(__file__).parent / "probe_function")
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}

Deploy = Callable[..., str]


@pytest.fixture(scope="module")
def lam(local_stack: LocalStack) -> Any:
    """No client-side retries: a throttle must reach the test as Lambda answered it."""
    return boto3.client(
        "lambda",
        endpoint_url=local_stack.endpoint,
        region_name=local_stack.settings.region,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
        **LOCAL_CREDENTIALS,
    )


@pytest.fixture(scope="module")
def role(local_stack: LocalStack) -> str:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    created = local_stack.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    return str(created["Role"]["Arn"])


@pytest.fixture(scope="module")
def deploy(lam: Any, role: str) -> Iterator[Deploy]:
    """Create a probe function (a fresh name each time) and return its name."""
    created: list[str] = []

    def create(
        handler: str, *, timeout: int = 30, env: dict[str, str] | None = None, reserved: int | None = None
    ) -> str:
        name = f"probe-{handler}-{uuid.uuid4().hex[:8]}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler=f"probe.{handler}",
            Code={"ZipFile": PROBE},
            Timeout=timeout,
            Environment={"Variables": env or {}},
        )
        if reserved is not None:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        created.append(name)
        return name

    yield create
    for name in created:
        lam.delete_function(FunctionName=name)


def _invoke(lam: Any, name: str, event: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}))
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def _log_messages(local_stack: LocalStack, name: str) -> list[str]:
    logs = local_stack.client("logs")
    group = f"/aws/lambda/{name}"
    try:
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [
        e["message"]
        for s in streams
        for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
    ]


def _machine(local_stack: LocalStack, function: str, retry_on: str, *, interval: int = 1) -> str:
    configuration = local_stack.client("lambda").get_function(FunctionName=function)["Configuration"]
    arn, role = configuration["FunctionArn"], configuration["Role"]
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": arn,
                "Retry": [{"ErrorEquals": [retry_on], "IntervalSeconds": interval, "MaxAttempts": 2}],
                "End": True,
            }
        },
    }
    created = local_stack.client("stepfunctions").create_state_machine(
        name=f"probe-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )
    return str(created["stateMachineArn"])


def _failures(history: list[dict[str, Any]]) -> list[str]:
    return [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]


# --------------------------------------------------------------------------------------------------------------------
def test_two_invocations_of_one_function_run_at_once_in_two_processes(
    local_stack: LocalStack, lam: Any, deploy: Deploy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = deploy("meet")
    event = {"folder": str(tmp_path), "parties": 2}
    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(_invoke, lam, name, event) for _ in range(2)]
        until(lambda: len(list(tmp_path.iterdir())) >= 1, what="a first party inside the barrier")
        print("printed by the test process while a handler runs")
        results = [call.result()[0] for call in calls]
    assert [r["met"] for r in results] == [True, True]  # each saw the other inside the barrier
    assert results[0]["pid"] != results[1]["pid"]
    assert os.getpid() not in {results[0]["pid"], results[1]["pid"]}
    assert "printed by the test process" in capsys.readouterr().out
    assert not any("printed by the test process" in m for m in _log_messages(local_stack, name))


def test_an_environment_stays_warm_between_invocations(lam: Any, deploy: Deploy) -> None:
    name = deploy("count")
    first, _ = _invoke(lam, name)
    second, _ = _invoke(lam, name)
    assert (first["calls"], second["calls"]) == (1, 2)
    assert first["pid"] == second["pid"]


def test_a_functions_environment_never_leaks_into_another(
    local_stack: LocalStack, lam: Any, deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SET_IN_THE_TEST_PROCESS", "1")
    one = deploy("environment", env={"ONLY_ONE": "1", "SHARED_NAME": "one"})
    two = deploy("environment", env={"ONLY_TWO": "2", "SHARED_NAME": "two"})
    env_one = _invoke(lam, one)[0]["env"]
    env_two = _invoke(lam, two)[0]["env"]
    assert (env_one["ONLY_ONE"], env_one["SHARED_NAME"], env_one["AWS_LAMBDA_FUNCTION_NAME"]) == ("1", "one", one)
    assert (env_two["ONLY_TWO"], env_two["SHARED_NAME"], env_two["AWS_LAMBDA_FUNCTION_NAME"]) == ("2", "two", two)
    assert "ONLY_TWO" not in env_one and "ONLY_ONE" not in env_two
    assert "SET_IN_THE_TEST_PROCESS" not in env_one and "SET_IN_THE_TEST_PROCESS" not in env_two
    assert env_one["AWS_ENDPOINT_URL"] == local_stack.endpoint
    # A configuration change reaches new environments only; the old ones are not reused.
    lam.update_function_configuration(FunctionName=one, Environment={"Variables": {"ONLY_ONE": "changed"}})
    assert _invoke(lam, one)[0]["env"]["ONLY_ONE"] == "changed"


def test_the_world_clock_reaches_the_environments(local_stack: LocalStack, lam: Any, deploy: Deploy) -> None:
    name = deploy("world_now")
    before = local_stack.clock.now()
    seen, _ = _invoke(lam, name)
    assert before <= seen <= local_stack.clock.now()
    local_stack.move_clock(advance=3600)
    moved, _ = _invoke(lam, name)
    assert moved >= before + 3600


def test_an_exception_is_its_class_name_and_its_traceback_is_logged(
    local_stack: LocalStack, lam: Any, deploy: Deploy
) -> None:
    name = deploy("refuse")
    payload, function_error = _invoke(lam, name)
    assert function_error is not None
    assert (payload["errorType"], payload["errorMessage"]) == ("LookupError", "no such thing")
    assert any(m.startswith("[ERROR] LookupError: no such thing") for m in _log_messages(local_stack, name))


def test_a_handler_that_cannot_be_imported_fails_as_lambda_says(lam: Any, deploy: Deploy) -> None:
    name = deploy("nowhere")
    payload, function_error = _invoke(lam, name)
    assert function_error is not None
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "Handler 'nowhere' missing on module 'probe'"


def test_a_timeout_is_sandbox_timedout_and_the_environment_is_replaced(
    local_stack: LocalStack, lam: Any, deploy: Deploy, tmp_path: Path
) -> None:
    name = deploy("fail_once", timeout=1)
    payload, function_error = _invoke(lam, name, {"folder": str(tmp_path), "how": "hang"})
    assert function_error is not None
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    after, _ = _invoke(lam, name, {"folder": str(tmp_path), "how": "hang"})
    assert after["attempt"] == "second"
    assert local_stack.bridge is not None and local_stack.bridge.environments(name) == 2
    messages = _log_messages(local_stack, name)
    assert "about to fail on purpose" in messages  # what it printed before it hung is kept
    assert any(m.endswith("Task timed out after 1.00 seconds") for m in messages)


def test_a_crash_is_runtime_exit_error(lam: Any, deploy: Deploy) -> None:
    name = deploy("crash")
    payload, function_error = _invoke(lam, name, {"code": 7})
    assert function_error is not None
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 7")


@pytest.mark.parametrize(("how", "error"), [("hang", "Sandbox.Timedout"), ("exit", "Runtime.ExitError")])
def test_step_functions_retries_a_timeout_and_a_crash_by_their_lambda_names(
    local_stack: LocalStack, sfn: Any, deploy: Deploy, tmp_path: Path, how: str, error: str
) -> None:
    name = deploy("fail_once", timeout=1)
    machine = _machine(local_stack, name, error)
    arn = executions.start(sfn, machine, {"folder": str(tmp_path), "how": how}, f"retry-{uuid.uuid4().hex[:8]}")
    result = executions.wait(sfn, arn, timeout=60)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["attempt"] == "second"
    assert _failures(executions.history(sfn, arn)) == [error]


def test_a_full_pool_throttles_and_step_functions_retries_it(
    local_stack: LocalStack, sfn: Any, lam: Any, deploy: Deploy, tmp_path: Path
) -> None:
    name = deploy("hold", reserved=1)
    event = {"folder": str(tmp_path)}
    holder = threading.Thread(target=_invoke, args=(lam, name, event))
    holder.start()
    try:
        until((tmp_path / "held").exists, what="the only environment to be held")
        with pytest.raises(ClientError) as throttled:
            _invoke(lam, name, event)
        assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429

        machine = _machine(local_stack, name, "Lambda.TooManyRequestsException", interval=60)
        moto_patches.RUNTIME.retry_scale = 1.0  # the back-off waits on the world clock, which the test moves
        arn = executions.start(sfn, machine, event, f"throttled-{uuid.uuid4().hex[:8]}")
        until(lambda: moto_patches.RUNTIME.parked["retry"] >= 1, what="the throttled Task to wait for its retry")
        (tmp_path / "release").touch()
        holder.join(timeout=60)
        local_stack.move_clock(advance=120)
        result = executions.wait(sfn, arn, timeout=60)
    finally:
        moto_patches.RUNTIME.retry_scale = 0.0
        (tmp_path / "release").touch()
        holder.join(timeout=60)
    assert result["status"] == "SUCCEEDED"
    assert _failures(executions.history(sfn, arn)) == ["Lambda.TooManyRequestsException"]


def test_a_function_without_reserved_concurrency_gets_ten_environments_and_the_eleventh_call_is_throttled(
    local_stack: LocalStack, deploy: Deploy, tmp_path: Path
) -> None:
    """The stack's default concurrency (`StackSettings`, as `billmig local up` starts it) applies to a function with
    no `ReservedConcurrentExecutions`: ten invocations held at once, each in its own environment, and an eleventh
    refused as Lambda refuses one past the account's concurrency, not a reserved one."""
    assert local_stack.bridge is not None
    name = deploy("hold")
    # a client of its own, with a connection for each call held open at once
    lam = boto3.client(
        "lambda",
        endpoint_url=local_stack.endpoint,
        region_name=local_stack.settings.region,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120, max_pool_connections=12),
        **LOCAL_CREDENTIALS,
    )
    folders = [tmp_path / f"holder-{i}" for i in range(10)]
    extra = tmp_path / "eleventh"
    for folder in [*folders, extra]:
        folder.mkdir()
    with ThreadPoolExecutor(len(folders)) as pool:
        holders = [pool.submit(_invoke, lam, name, {"folder": str(folder)}) for folder in folders]
        try:
            until(lambda: all((f / "held").exists() for f in folders), what="ten environments to be held at once")
            with pytest.raises(ClientError) as throttled:
                _invoke(lam, name, {"folder": str(extra)})
        finally:
            for folder in [*folders, extra]:
                (folder / "release").touch()
        results = [holder.result(timeout=60) for holder in holders]
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert not (extra / "held").exists()  # refused before any handler ran
    assert results == [({"released": True}, None)] * 10  # all ten were held until released, none timed out
    assert local_stack.bridge.environments(name) == 10


def test_logs_land_in_the_functions_own_log_group(local_stack: LocalStack, lam: Any, deploy: Deploy) -> None:
    speaker, other = deploy("say"), deploy("say")
    words = f"words-{uuid.uuid4().hex}"
    _invoke(lam, speaker, {"words": words})
    _invoke(lam, other, {"words": "something else"})
    mine = _log_messages(local_stack, speaker)
    assert words in mine
    assert words not in _log_messages(local_stack, other)
    assert mine[0].startswith("START RequestId: ")
    assert mine[-2].startswith("END RequestId: ") and mine[-1].startswith("REPORT RequestId: ")


def test_a_task_invokes_its_function_in_process_with_lambdas_results(
    local_stack: LocalStack, sfn: Any, deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lambda_tasks_in_process`: a Task's invocation never reaches the Lambda HTTP API, yet its output, a handler
    error's name and a missing function's Lambda error are what that API would have given Step Functions."""
    from moto.awslambda.responses import LambdaResponse

    over_http: list[str] = []
    original = LambdaResponse.invoke

    def counted(self: Any) -> Any:
        over_http.append(self.path)
        return original(self)

    monkeypatch.setattr(LambdaResponse, "invoke", counted)
    counting = _machine(local_stack, deploy("count"), "Lambda.Unknown")
    arn = executions.start(sfn, counting, {}, f"inproc-{uuid.uuid4().hex[:8]}")
    assert json.loads(executions.wait(sfn, arn, timeout=60)["output"])["calls"] == 1

    refused = _machine(local_stack, deploy("refuse"), "Lambda.Unknown")
    arn = executions.start(sfn, refused, {}, f"inproc-{uuid.uuid4().hex[:8]}")
    failed = executions.wait(sfn, arn, timeout=60)
    assert (failed["status"], failed["error"]) == ("FAILED", "LookupError")
    assert "no such thing" in failed["cause"]

    configuration = local_stack.client("lambda").get_function(FunctionName=deploy("count"))["Configuration"]
    task = {"Type": "Task", "Resource": configuration["FunctionArn"] + "-gone", "End": True}
    missing = sfn.create_state_machine(
        name=f"probe-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Call", "States": {"Call": task}}),
        roleArn=configuration["Role"],
    )["stateMachineArn"]
    arn = executions.start(sfn, missing, {}, f"inproc-{uuid.uuid4().hex[:8]}")
    failed = executions.wait(sfn, arn, timeout=60)
    assert (failed["status"], failed["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")
    assert over_http == []
