"""What `billmig metronome plan|start|status` do, as functions the commands, the demo and the tests call.

Everything is checked before anything is written: the config (pydantic, then resolved against both accounts), the
batch file, and each customer's triage. `start` names the execution after the batch; starting the same batch again
while it runs returns that execution, and after it ended starts the next attempt (`<batch>-r2`...), which resumes:
every step is run once through the progress store.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from billmig.adapters.metronome_sdk import MetronomeSDKTarget
from billmig.adapters.stripe_sdk import StripeSDKSource
from billmig.batch import BATCH_ID, STRIPE_CUSTOMER_ID
from billmig.metronome.batch_outcome import outcome_of
from billmig.metronome.config import load_config
from billmig.metronome.contract_terms import rfc3339
from billmig.metronome.errors import InvalidMigrationConfig
from billmig.metronome.plan import BatchPlan, plan_batch
from billmig.metronome.resolution import ResolvedConfig, resolve
from billmig.metronome.snapshot import LIVE_STATUSES
from billmig.metronome.storage import MigrationRun, customers_key, run_key, run_version_key
from billmig.progress import SubjectProgress
from billmig.steps import Step

from billmig_cli import aws_target, executions

STRIPE_KEY_VARIABLE = "STRIPE_API_KEY"
METRONOME_TOKEN_VARIABLE = "METRONOME_BEARER_TOKEN"
STEPS = (
    Step.METRONOME_SNAPSHOT,
    Step.METRONOME_PREPARE,
    Step.METRONOME_CONTRACT,
    Step.METRONOME_PARALLEL_RUN,
    Step.METRONOME_BACKFILL_USAGE,
    Step.METRONOME_CUTOVER_GATE,
    Step.METRONOME_STRIPE_PERIOD_END,
    Step.METRONOME_STRIPE_END_NOW,
    Step.METRONOME_MOVE_BALANCE,
    Step.METRONOME_AUTO_RECHARGE,
    Step.METRONOME_BILLABLE,
    Step.METRONOME_CUT_OVER,
    Step.METRONOME_SETTLE_BALANCES,
    Step.METRONOME_CREDIT_CHECK,
)
IN_PARALLEL_RUN = Step.METRONOME_BACKFILL_USAGE  # the last step before the execution waits for the cutover


@dataclass
class Batch:
    batch_id: str
    customer_ids: list[str]


@dataclass
class Vendors:
    stripe: StripeSDKSource
    metronome: MetronomeSDKTarget


def connect(stripe_key: str, stripe_base: str | None, metronome_token: str, metronome_base: str | None) -> Vendors:
    return Vendors(
        StripeSDKSource.connect(stripe_key, stripe_base), MetronomeSDKTarget.connect(metronome_token, metronome_base)
    )


def load_batch(path: Path) -> Batch:
    """`{"batch_id": ..., "customers": [{"stripe_customer_id": ...}]}`; every problem at once, naming the record."""
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidMigrationConfig([f"{path}: no such file"]) from exc
    except json.JSONDecodeError as exc:
        raise InvalidMigrationConfig([f"{path}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]) from exc
    if not isinstance(raw, dict):
        raise InvalidMigrationConfig([f"{path}: expected an object with batch_id and customers"])
    problems = []
    batch_id = raw.get("batch_id")
    if not isinstance(batch_id, str) or not re.match(BATCH_ID, batch_id):
        problems.append(f"{path}: batch_id: {batch_id!r} must match {BATCH_ID}")
    records = raw.get("customers")
    if not isinstance(records, list) or not records:
        raise InvalidMigrationConfig([*problems, f"{path}: customers: must be a non-empty list"])
    ids: list[str] = []
    for index, record in enumerate(records):
        value = record.get("stripe_customer_id") if isinstance(record, dict) else None
        extra = sorted(set(record) - {"stripe_customer_id"}) if isinstance(record, dict) else []
        if not isinstance(value, str) or not STRIPE_CUSTOMER_ID.match(value):
            problems.append(f"{path}: customers.{index}.stripe_customer_id: {value!r} is not a Stripe customer id")
        elif value in ids:
            problems.append(f"{path}: customers.{index} ({value}): duplicate of customers.{ids.index(value)}")
        else:
            ids.append(value)
        if extra:
            problems.append(f"{path}: customers.{index}: unknown keys {extra}")
    if problems:
        raise InvalidMigrationConfig(problems)
    assert isinstance(batch_id, str)
    return Batch(batch_id, ids)


def all_active(vendors: Vendors, batch_id: str) -> Batch:
    return Batch(batch_id, vendors.stripe.customers_with_subscription_in(LIVE_STATUSES))


def resolved_config(path: Path, vendors: Vendors, overrides: dict[str, Any]) -> ResolvedConfig:
    return resolve(load_config(path, overrides), vendors.metronome, vendors.stripe, str(path))


def plan(batch: Batch, config: ResolvedConfig, vendors: Vendors) -> BatchPlan:
    return plan_batch(batch.customer_ids, config, vendors.stripe, vendors.metronome)


class BatchBlocked(Exception):
    def __init__(self, blocked: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in blocked.items()))
        self.blocked = blocked


@dataclass
class Started:
    batch_id: str
    execution_arn: str
    customers: int
    excluded: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    already_running: bool = False


def _store_metronome_token(secret_name: str) -> None:
    token = os.environ.get(METRONOME_TOKEN_VARIABLE)
    if not token:
        return
    secrets = aws_target.client("secretsmanager")
    try:
        secrets.put_secret_value(SecretId=secret_name, SecretString=token)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=secret_name, SecretString=token, Description="Metronome bearer token (billmig)")


def _executions(sfn: Any, state_machine_arn: str, batch_id: str) -> list[dict[str, Any]]:
    pattern = re.compile(rf"^{re.escape(batch_id)}(-r\d+)?$")
    found = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        found += [e for e in page["executions"] if pattern.match(e["name"])]
    return found


def start(
    batch: Batch,
    config: ResolvedConfig,
    batch_plan: BatchPlan,
    *,
    exclude_blocked: bool = False,
    stack_name: str = aws_target.DEFAULT_STACK,
) -> Started:
    blocked = {c.stripe_customer_id: "; ".join(c.reasons) for c in batch_plan.blocked}
    if blocked and not exclude_blocked:
        raise BatchBlocked(blocked)
    outputs = aws_target.stack_outputs(stack_name)
    sfn = aws_target.client("stepfunctions")
    machine = outputs["MetronomeMigrationStateMachineArn"]
    earlier = _executions(sfn, machine, batch.batch_id)
    running = [e for e in earlier if e["status"] == "RUNNING"]
    migrating = [c for c in batch.customer_ids if c not in blocked]
    if running:
        return Started(batch.batch_id, running[0]["executionArn"], len(migrating), blocked, True, True)
    _store_metronome_token(outputs["MetronomeApiKeySecretName"])
    bucket = outputs["ImportBucketName"]
    s3 = aws_target.client("s3")
    document = MigrationRun(batch_id=batch.batch_id, config=config, excluded=blocked).model_dump_json().encode()
    version_key = run_version_key(batch.batch_id, document)
    s3.put_object(Bucket=bucket, Key=version_key, Body=document)
    s3.put_object(Bucket=bucket, Key=run_key(batch.batch_id), Body=document)
    items = json.dumps([{"stripe_customer_id": c} for c in migrating])
    s3.put_object(Bucket=bucket, Key=customers_key(batch.batch_id), Body=items.encode())
    payload = {
        "batch_id": batch.batch_id,
        "bucket": bucket,
        "customers_key": customers_key(batch.batch_id),
        "run_key": version_key,
        "max_concurrency": config.concurrency,
        # every customer waits for its cutover in the second Map at once (a distributed Map runs up to 10,000)
        "cutover_concurrency": min(10_000, max(1, len(batch.customer_ids))),
        "cutover_at": rfc3339(config.cutover_at),
        # The batch's decision instant: each customer waits for it, then for its own (an anniversary boundary).
        "decide_at": rfc3339(config.cutover_at - timedelta(hours=config.cutover_lead_hours)),
    }
    name = batch.batch_id if not earlier else f"{batch.batch_id}-r{len(earlier) + 1}"
    arn = executions.start(sfn, machine, payload, executions.execution_name(name))
    return Started(batch.batch_id, arn, len(migrating), blocked, resumed=bool(earlier))


@dataclass
class BatchStatus:
    batch_id: str
    customers: int
    steps: dict[str, Counter[str]]
    phases: Counter[str]
    failures: dict[str, str]
    execution: str | None
    held_back: dict[str, str] = field(default_factory=dict)
    # how the latest execution ended, from its output (`cleanup.batch.summary`): "completed with errors: ..." or None
    outcome: str | None = None

    @property
    def done(self) -> int:
        return self.steps[IN_PARALLEL_RUN]["succeeded"]


def status(batch_id: str, *, stack_name: str = aws_target.DEFAULT_STACK) -> BatchStatus:
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    outputs = aws_target.stack_outputs(stack_name)
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))
    subjects = store.all_in_run(batch_id)
    steps: dict[str, Counter[str]] = {str(s): Counter() for s in STEPS}
    for progress in subjects:
        for step in STEPS:
            record = progress.steps.get(step)
            steps[str(step)][record.status.value if record else "pending"] += 1
    so_far = outcome_of(subjects)  # the failures, held-back customers and phases, as the execution will report them
    phases, failures, held_back = Counter(so_far.phases), so_far.failed, so_far.held_back
    sfn = aws_target.client("stepfunctions")
    found = _executions(sfn, outputs["MetronomeMigrationStateMachineArn"], batch_id)
    latest = max(found, key=lambda e: e["startDate"]) if found else None
    execution = f"{latest['name']} {latest['status']}" if latest else None
    outcome = None
    if latest and latest["status"] == "SUCCEEDED":
        ended = json.loads(sfn.describe_execution(executionArn=latest["executionArn"]).get("output") or "{}")
        outcome = ((ended.get("cleanup") or {}).get("batch") or {}).get("summary")
    return BatchStatus(batch_id, len(subjects), steps, phases, failures, execution, held_back, outcome)


def wait_for_parallel_run(
    batch_id: str,
    customers: int,
    *,
    stack_name: str = aws_target.DEFAULT_STACK,
    timeout: float = 600,
    execution_arn: str | None = None,
) -> BatchStatus:
    """Until every customer has begun its parallel run or failed (the execution itself waits for the cutover).

    Given the execution, it first waits on its Map Run's item counts (two calls a poll); then each poll only counts
    (DynamoDB does, server-side), and the full status is read once, at the end: reading every progress item once a
    second would cost more than the migration it watches on a large batch."""
    import time

    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    outputs = aws_target.stack_outputs(stack_name)
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))
    deadline = time.monotonic() + timeout
    if execution_arn is not None:
        executions.wait_for_map_run(aws_target.client("stepfunctions"), execution_arn, customers, timeout=timeout)
    delay = 0.1
    while True:
        settled = store.count_settled(batch_id, IN_PARALLEL_RUN)
        if settled >= customers:
            return status(batch_id, stack_name=stack_name)
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: {settled} of {customers} customers settled after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def wait_for_progress(
    batch_id: str,
    pending: Callable[[list[SubjectProgress]], list[str]],
    *,
    stack_name: str = aws_target.DEFAULT_STACK,
    timeout: float = 600,
) -> list[SubjectProgress]:
    """Until `pending` (of the batch's progress items) names nobody; returns the batch's items then. Raises
    TimeoutError naming who is still pending.

    For the cutover's stages, whose customers end in different ways (cut over, or held back: no step to count). The
    first poll reads the batch's items; the next ones only those `pending` still names (a settled customer stays
    settled), so a poll costs what is left to wait for, not the batch."""
    import time

    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    outputs = aws_target.stack_outputs(stack_name)
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))
    deadline = time.monotonic() + timeout
    delay = 0.05
    latest = {p.subject: p for p in store.all_in_run(batch_id)}
    polled = True
    while True:
        waiting = pending(list(latest.values()))
        if not waiting:
            return list(latest.values()) if polled else store.all_in_run(batch_id)
        polled = False
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id}: still pending after {timeout:.0f} s: {', '.join(sorted(waiting))}")
        time.sleep(delay)
        # a short cap: the demo's clock walk waits on this between its moves
        delay = min(0.25, delay * 1.5)
        latest.update({p.subject: p for p in store.get_many(batch_id, sorted(waiting))})


class FunctionFailed(Exception):
    """A function answered with an error: its type (the typed error's class) and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def invoke(function: str, payload: dict[str, Any], *, stack_name: str = aws_target.DEFAULT_STACK) -> dict[str, Any]:
    """Invoke the stack's function built from functions/<function>/ and return its JSON answer."""
    from billmig_cli.local_functions import deployed_function_name

    name = deployed_function_name(function, aws_target.client("cloudformation"), stack_name)
    response = aws_target.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    answer: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise FunctionFailed(str(answer.get("errorType")), str(answer.get("errorMessage")))
    return answer


def rollback(
    customer: str,
    reason: str,
    requested_by: str,
    *,
    batch_id: str | None = None,
    stack_name: str = aws_target.DEFAULT_STACK,
) -> dict[str, Any]:
    payload = {"stripe_customer_id": customer, "reason": reason, "requested_by": requested_by, "batch_id": batch_id}
    return invoke("metronome_rollback", payload, stack_name=stack_name)


def cleanup_plan(batch_id: str, stripe: StripeSDKSource, *, stack_name: str = aws_target.DEFAULT_STACK) -> Any:
    """What `cleanup` would do, read from the progress store and Stripe: writes nothing."""
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
    from billmig.metronome.cleanup import plan_cleanup

    outputs = aws_target.stack_outputs(stack_name)
    store = DynamoDBProgressStore(outputs["ProgressTableName"], client=aws_target.client("dynamodb"))
    return plan_cleanup(batch_id, stripe, store)


def cleanup(batch_id: str, *, stack_name: str = aws_target.DEFAULT_STACK) -> dict[str, Any]:
    return invoke("metronome_cleanup", {"batch_id": batch_id, "runner": "cli"}, stack_name=stack_name)
