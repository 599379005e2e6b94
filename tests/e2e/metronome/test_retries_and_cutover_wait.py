"""On this state machine: transient failures are retried by Step Functions, a failure after the vendor write
resumes without a duplicate, and the execution then waits for the cutover (the world clock releasing it is
`test_cutover.py`'s)."""

from __future__ import annotations

import uuid
from typing import Any

from billmig.steps import Step
from billmig_cli import metronome_migration as runner
from billmig_local.lambda_bridge import LambdaFault
from billmig_local.stack import LocalStack
from metronome_book import Book, book, fresh_customer  # noqa: F401 - the fixture


def test_retries_then_the_wait_for_cutover_released_by_the_world_clock(
    book: Book, aws: LocalStack, sfn: Any, lambda_faults: list[Any]
) -> None:
    aliases = [f"retry-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    customers = [fresh_customer(book, alias) for alias in aliases]
    batch = runner.Batch(f"retry-{uuid.uuid4().hex[:6]}", customers)
    config = book.config  # the cutover is decided a day before the next month boundary: the execution waits
    vendors = runner.Vendors(book.source(), book.target())
    plan = runner.plan(batch, config, vendors)
    assert not plan.blocked
    lambda_faults.append(LambdaFault(function="metronome-prepare", error="VendorUnavailable", times=2))
    lambda_faults.append(LambdaFault(function="metronome-contract", error="VendorThrottled", when="after"))
    started = runner.start(batch, config, plan)
    runner.wait_for_parallel_run(batch.batch_id, len(customers), timeout=120)

    assert sfn.describe_execution(executionArn=started.execution_arn)["status"] == "RUNNING"
    for alias in aliases:
        (customer,) = list(book.metronome.v1.customers.list(ingest_alias=alias))
        assert len(list(book.metronome.v2.contracts.list(customer_id=customer.id))) == 1
    status = runner.status(batch.batch_id)
    assert status.failures == {}
    assert [f.times for f in lambda_faults] == [0, 0]  # every injected failure happened and was retried
    for customer in customers:  # waiting in WaitForCutover: nothing decided before the decision instant
        progress = book.store.get(batch.batch_id, customer)
        assert progress is not None and progress.phase == "parallel_run" and progress.cutover_at is None
        assert Step.METRONOME_CUTOVER_GATE not in progress.steps
