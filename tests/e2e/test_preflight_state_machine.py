"""The preflight state machine, run for real on the local stack: Map, Retry, Catch, Wait and a schedule."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.progress import SubjectState
from billmig_cli import executions
from billmig_local import moto_patches
from billmig_local.stack import LocalStack
from suite import until


def _batch(n: int, *, broken: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    batch_id = f"b-{uuid.uuid4().hex[:10]}"
    customers: list[dict[str, Any]] = [
        {"stripe_customer_id": f"cus_{batch_id[2:]}{i:03d}", "internal_customer_id": f"acct-{i}"} for i in range(n)
    ]
    for index, record in (broken or {}).items():
        customers[index] = record
    return {"batch_id": batch_id, "not_before": "2000-01-01T00:00:00Z", "customers": customers}


def _run(local_stack: LocalStack, sfn: Any, batch: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    arn = executions.start(sfn, local_stack.outputs["PreflightStateMachineArn"], batch, batch["batch_id"])
    result = executions.wait(sfn, arn, timeout=120)
    return result, executions.history(sfn, arn)


def _store(local_stack: LocalStack, dynamodb: Any) -> DynamoDBProgressStore:
    return DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)


def test_a_batch_succeeds_and_every_customer_is_enrolled(local_stack: LocalStack, sfn: Any, dynamodb: Any) -> None:
    batch = _batch(6)
    result, _ = _run(local_stack, sfn, batch)
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert [r["status"] for r in output["results"]] == ["done"] * 6
    assert output["report"]["counts"] == {"enrolled": 0, "running": 0, "succeeded": 6, "failed": 0}
    progress = _store(local_stack, dynamodb).get(batch["batch_id"], batch["customers"][2]["stripe_customer_id"])
    assert progress is not None
    assert progress.steps["preflight"].vendor_ids == {"internal_customer_id": "acct-2"}


def test_a_transient_error_is_retried_by_name_and_then_succeeds(
    local_stack: LocalStack, sfn: Any, dynamodb: Any, lambda_faults: list[Any]
) -> None:
    from billmig_local.lambda_bridge import LambdaFault

    batch = _batch(1)
    lambda_faults.append(LambdaFault(function="preflight", error="VendorThrottled", times=2))
    result, history = _run(local_stack, sfn, batch)
    assert result["status"] == "SUCCEEDED"
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["VendorThrottled", "VendorThrottled"]
    progress = _store(local_stack, dynamodb).get(batch["batch_id"], batch["customers"][0]["stripe_customer_id"])
    assert progress is not None
    assert progress.state is SubjectState.SUCCEEDED


def test_a_permanent_error_is_caught_recorded_and_the_batch_carries_on(
    local_stack: LocalStack, sfn: Any, dynamodb: Any
) -> None:
    batch = _batch(4, broken={1: {"stripe_customer_id": "cus_NoInternalId"}})
    result, history = _run(local_stack, sfn, batch)
    assert result["status"] == "SUCCEEDED"
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["InvalidCustomerRecord"]  # permanent: caught at once, never retried
    store = _store(local_stack, dynamodb)
    failed = store.subjects_in_state(batch["batch_id"], SubjectState.FAILED)
    assert [p.subject for p in failed] == ["cus_NoInternalId"]
    error = failed[0].steps["preflight"].last_error
    assert error is not None
    assert error.type == "InvalidCustomerRecord"
    assert not error.transient
    assert "record 1 (cus_NoInternalId): internal_customer_id: Field required" in error.message
    assert len(store.subjects_in_state(batch["batch_id"], SubjectState.SUCCEEDED)) == 3


def test_rerunning_a_batch_redoes_nothing(local_stack: LocalStack, sfn: Any) -> None:
    batch = _batch(3)
    _run(local_stack, sfn, batch)
    arn = executions.start(sfn, local_stack.outputs["PreflightStateMachineArn"], batch, batch["batch_id"] + "-rerun")
    output = json.loads(executions.wait(sfn, arn)["output"])
    assert [r["status"] for r in output["results"]] == ["already_done"] * 3


def test_a_wait_is_released_by_the_world_clock(local_stack: LocalStack, sfn: Any) -> None:
    batch = _batch(1)
    start = local_stack.clock.now_datetime() + timedelta(days=2)
    batch["not_before"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = executions.start(sfn, local_stack.outputs["PreflightStateMachineArn"], batch, batch["batch_id"])
    until(lambda: moto_patches.RUNTIME.parked["wait"] >= 1, what="the Wait state to park on the world clock")
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    local_stack.move_clock(to=start.timestamp() + 1)
    assert executions.wait(sfn, arn)["status"] == "SUCCEEDED"


def test_retry_back_off_waits_on_the_world_clock(local_stack: LocalStack, sfn: Any, lambda_faults: list[Any]) -> None:
    from billmig_local.lambda_bridge import LambdaFault

    batch = _batch(1)
    lambda_faults.append(LambdaFault(function="preflight", error="VendorUnavailable", times=1))
    moto_patches.RUNTIME.retry_scale = 3600.0  # the ASL's 2 s interval becomes 2 h of world time
    try:
        arn = executions.start(sfn, local_stack.outputs["PreflightStateMachineArn"], batch, batch["batch_id"])
        until(lambda: moto_patches.RUNTIME.parked["retry"] >= 1, what="the retry to park on the world clock")
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        local_stack.move_clock(advance=3 * 3600)
        assert executions.wait(sfn, arn)["status"] == "SUCCEEDED"
    finally:
        moto_patches.RUNTIME.retry_scale = 0.0


def test_the_daily_canary_schedule_fires_on_the_world_clock(local_stack: LocalStack, sfn: Any) -> None:
    now = local_stack.clock.now_datetime()
    next_six = (now + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    moved = local_stack.move_clock(to=next_six.timestamp() + 30)
    canary = [f for f in moved["fired"] if f["schedule"].endswith("billmig-canary-local")]
    assert len(canary) >= 1
    assert canary[-1]["at"].startswith(next_six.strftime("%Y-%m-%dT06:00:00"))
    result = executions.wait(sfn, canary[-1]["execution_arn"])
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["report"]["counts"]["succeeded"] == 1
    # The same firing never starts twice: its execution name is derived from the firing time.
    name = canary[-1]["execution_arn"].rsplit(":", 1)[1]
    assert name == f"billmig-canary-local-{next_six:%Y%m%dT060000Z}"


def test_a_lambda_throttle_on_the_failure_recorder_is_retried_not_fatal(
    local_stack: LocalStack, sfn: Any, dynamodb: Any, lambda_faults: list[Any]
) -> None:
    from billmig_local.lambda_bridge import LambdaFault

    batch = _batch(2, broken={0: {"stripe_customer_id": "cus_ThrottledRecorder"}})
    lambda_faults.append(LambdaFault(function="record-failure", error="Lambda.TooManyRequestsException", times=2))
    result, history = _run(local_stack, sfn, batch)
    assert result["status"] == "SUCCEEDED"
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["InvalidCustomerRecord", "Lambda.TooManyRequestsException", "Lambda.TooManyRequestsException"]
    progress = _store(local_stack, dynamodb).get(batch["batch_id"], "cus_ThrottledRecorder")
    assert progress is not None
    assert progress.state is SubjectState.FAILED
