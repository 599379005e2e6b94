"""On this state machine: transient failures are retried by Step Functions, a failure after the vendor write
resumes without a duplicate, and the execution then waits for the cutover (the world clock releasing it is
`test_cutover.py`'s)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from billmig.progress import StepStatus
from billmig.steps import Step
from billmig_cli import metronome_migration as runner
from billmig_local.lambda_bridge import LambdaFault
from billmig_local.stack import LocalStack
from metronome_book import Book, book, fresh_customer  # noqa: F401 - the fixture
from suite import until


def test_retries_then_the_wait_for_cutover(book: Book, aws: LocalStack, sfn: Any, lambda_faults: list[Any]) -> None:
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


def _reaches_the_cutover_wait(sfn: Any, execution_arn: str, book: Book, batch_id: str, waiting: list[str]) -> None:
    """The Maps are distributed: their iterations' states are in child executions, not in the parent's history. A
    customer is in WaitForCutover once the first Map has ended its iteration (the usage backfill succeeded) and the
    second Map's iteration for it runs; the ones caught and recorded end theirs in NotMigrated."""

    def in_the_wait() -> bool:
        runs = sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
        if len(runs) < 2:  # the second Map (CutOverCustomers) starts once the first has ended every item
            return False
        first = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
        backfilled = [book.store.get(batch_id, c) for c in waiting]
        return (
            first["running"] == 0
            and first["pending"] == 0
            and all(
                p is not None
                and Step.METRONOME_BACKFILL_USAGE in p.steps
                and p.steps[Step.METRONOME_BACKFILL_USAGE].status is StepStatus.SUCCEEDED
                for p in backfilled
            )
        )

    until(in_the_wait, timeout=60, what="the execution to reach WaitForCutover")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"


def test_a_permanent_failure_is_caught_recorded_and_the_batch_carries_on(
    book: Book, aws: LocalStack, sfn: Any, lambda_faults: list[Any]
) -> None:
    """A customer whose Stripe subscription ended between the plan and the start is refused at its snapshot (typed,
    permanent: never retried) and recorded; Lambda's own errors, on a step and on the failure recorder, are retried;
    the others migrate and the execution goes on to wait for the cutover."""
    aliases = [f"catch-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    customers = [fresh_customer(book, alias, grants=False) for alias in aliases]
    batch = runner.Batch(f"catch-{uuid.uuid4().hex[:6]}", customers)
    cutover = datetime.fromtimestamp(aws.clock.now(), UTC).replace(microsecond=0) + timedelta(days=20)
    config = book.config.model_copy(update={"cutover_at": cutover})
    plan = runner.plan(batch, config, runner.Vendors(book.source(), book.target()))
    assert not plan.blocked
    ended = customers[1]
    (subscription,) = book.stripe.v1.subscriptions.list(params={"customer": ended}).data
    book.stripe.v1.subscriptions.cancel(subscription.id)
    lambda_faults.append(LambdaFault(function="metronome-prepare", error="Lambda.ServiceException", times=1))
    lambda_faults.append(LambdaFault(function="record-failure", error="Lambda.TooManyRequestsException", times=2))
    started = runner.start(batch, config, plan)
    try:
        settled = runner.wait_for_parallel_run(batch.batch_id, len(customers), timeout=120)
        _reaches_the_cutover_wait(sfn, started.execution_arn, book, batch.batch_id, [customers[0], customers[2]])
        assert [f.times for f in lambda_faults] == [0, 0]  # every Lambda error happened and was retried
        assert settled.failures.keys() == {ended}
        assert settled.failures[ended].startswith(f"metronome.snapshot: CustomerBlocked: {ended}: no live subscription")
        assert settled.steps["metronome.parallel_run"]["succeeded"] == 2
        record = book.store.get(batch.batch_id, ended)
        assert record is not None
        snapshot = record.steps["metronome.snapshot"]
        assert snapshot.attempts == 1  # permanent: caught at once, never retried
        assert snapshot.last_error is not None and not snapshot.last_error.transient
        assert record.phase is None  # never dual-written: its usage keeps going to Stripe only
        for alias in (aliases[0], aliases[2]):
            (customer,) = list(book.metronome.v1.customers.list(ingest_alias=alias))
            assert len(list(book.metronome.v2.contracts.list(customer_id=customer.id))) == 1
        assert not list(book.metronome.v1.customers.list(ingest_alias=aliases[1]))
    finally:
        sfn.stop_execution(executionArn=started.execution_arn)


def test_retry_back_off_waits_on_the_world_clock(
    book: Book, aws: LocalStack, sfn: Any, lambda_faults: list[Any]
) -> None:
    from billmig_local import moto_patches

    alias = f"backoff-{uuid.uuid4().hex[:6]}"
    batch = runner.Batch(f"backoff-{uuid.uuid4().hex[:6]}", [fresh_customer(book, alias, grants=False)])
    cutover = datetime.fromtimestamp(aws.clock.now(), UTC).replace(microsecond=0) + timedelta(days=20)
    config = book.config.model_copy(update={"cutover_at": cutover})
    plan = runner.plan(batch, config, runner.Vendors(book.source(), book.target()))
    lambda_faults.append(LambdaFault(function="metronome-prepare", error="VendorUnavailable", times=1))
    moto_patches.RUNTIME.retry_scale = 3600.0  # the ASL's 2 s interval becomes 2 h of world time
    try:
        started = runner.start(batch, config, plan)
        until(lambda: moto_patches.RUNTIME.parked["retry"] >= 1, what="the retry to park on the world clock")
    finally:
        moto_patches.RUNTIME.retry_scale = 0.0
    try:
        assert runner.status(batch.batch_id).steps["metronome.prepare"]["succeeded"] == 0
        assert sfn.describe_execution(executionArn=started.execution_arn)["status"] == "RUNNING"
        aws.move_clock(advance=3 * 3600)
        assert runner.wait_for_parallel_run(batch.batch_id, 1, timeout=120).failures == {}
        _reaches_the_cutover_wait(sfn, started.execution_arn, book, batch.batch_id, batch.customer_ids)
    finally:
        sfn.stop_execution(executionArn=started.execution_arn)


def test_starting_a_stopped_batch_again_resumes_it_and_duplicates_nothing(
    book: Book, aws: LocalStack, sfn: Any
) -> None:
    """`billmig metronome start` on a batch whose execution was stopped (an operator, a deploy, a quota) starts a new
    execution for it (`<batch>-r2`) that finds every done step done: the same Metronome customer and contract for
    each customer, no step run twice, and it waits for the cutover like the first."""
    aliases = [f"resume-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    customers = [fresh_customer(book, alias) for alias in aliases]
    batch = runner.Batch(f"resume-{uuid.uuid4().hex[:6]}", customers)
    plan = runner.plan(batch, book.config, runner.Vendors(book.source(), book.target()))
    first = runner.start(batch, book.config, plan)
    assert not first.resumed
    runner.wait_for_parallel_run(batch.batch_id, len(customers), timeout=120)
    sfn.stop_execution(executionArn=first.execution_arn)
    until(
        lambda: sfn.describe_execution(executionArn=first.execution_arn)["status"] == "ABORTED",
        what="the first execution to stop",
    )

    def made() -> dict[str, tuple[str, list[str]]]:
        found = {}
        for alias in aliases:
            (customer,) = list(book.metronome.v1.customers.list(ingest_alias=alias))
            found[alias] = (customer.id, [c.id for c in book.metronome.v2.contracts.list(customer_id=customer.id)])
        return found

    def attempts() -> dict[tuple[str, str], int]:
        records = {c: book.store.get(batch.batch_id, c) for c in customers}
        return {(c, s): r.steps[s].attempts for c, r in records.items() if r for s in r.steps}

    before, tried = made(), attempts()
    assert all(len(contracts) == 1 for _, contracts in before.values())
    again = runner.start(batch, book.config, plan)
    try:
        assert again.resumed and not again.already_running
        assert again.execution_arn != first.execution_arn and again.execution_arn.endswith(f"{batch.batch_id}-r2")
        _reaches_the_cutover_wait(sfn, again.execution_arn, book, batch.batch_id, customers)
        assert made() == before
        assert attempts() == tried  # every step found done: claimed, not run again
        assert runner.status(batch.batch_id).failures == {}
    finally:
        sfn.stop_execution(executionArn=again.execution_arn)
