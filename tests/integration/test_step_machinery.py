"""`run_once`, the one way every step runs, against the template's progress table on the local stack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.errors import StepClaimedElsewhere, VendorRejected, VendorUnavailable
from billmig.idempotency_keys import idempotency_key
from billmig.progress import PhaseChange, StepStatus, SubjectState
from billmig.steps import RunningStep, StepDone, StepKey, StepOutcome, run_once, settle_once
from billmig_local.stack import LocalStack


@pytest.fixture()
def store(local_stack: LocalStack, dynamodb: Any) -> DynamoDBProgressStore:
    return DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)


@pytest.fixture()
def key() -> StepKey:
    return StepKey(f"run-{uuid.uuid4().hex[:8]}", "cus_Machinery", "metronome.contract")


def test_a_step_runs_once_and_a_rerun_reports_what_it_did(store: DynamoDBProgressStore, key: StepKey) -> None:
    calls: list[int] = []

    def body(running: RunningStep) -> StepOutcome:
        calls.append(running.attempt)
        return StepOutcome("created", {"contract_id": "c-1"}, detail="rate card standard")

    first = run_once(store, key, "runner-a", body)
    again = run_once(store, key, "runner-b", body)
    assert calls == [1]
    assert (first.outcome, first.already_done) == ("created", False)
    assert (again.outcome, again.already_done, again.vendor_ids) == ("created", True, {"contract_id": "c-1"})
    record = store.get(key.run_id, key.subject).steps[key.step]  # type: ignore[union-attr]
    assert (record.status, record.outcome, record.detail) == (StepStatus.SUCCEEDED, "created", "rate card standard")


@pytest.mark.parametrize("keep", ["remember", "note"])
def test_ids_kept_before_an_error_reach_the_resumed_attempt(
    store: DynamoDBProgressStore, key: StepKey, keep: str
) -> None:
    """`remember` writes the ids at once; `note` writes them with the error: either way the next attempt has them."""

    def made_then_failed(running: RunningStep) -> StepOutcome:
        getattr(running, keep)({"contract_id": "c-9"})
        raise VendorUnavailable("connection reset after the contract was created")

    with pytest.raises(VendorUnavailable):
        run_once(store, key, "runner-a", made_then_failed)
    progress = store.get(key.run_id, key.subject)
    assert progress is not None and progress.state is SubjectState.FAILED
    error = progress.steps[key.step].last_error
    assert error is not None and (error.type, error.transient) == ("VendorUnavailable", True)
    assert progress.steps[key.step].vendor_ids == {"contract_id": "c-9"}

    seen: dict[str, str] = {}

    def resumed(running: RunningStep) -> StepOutcome:
        seen.update(running.vendor_ids)
        return StepOutcome("found", {})  # looked up by the kept id, not created again

    done = run_once(store, key, "runner-a", resumed)
    assert seen == {"contract_id": "c-9"}
    assert done.vendor_ids == {"contract_id": "c-9"}
    assert (done.attempt, done.revision) == (2, 1)  # transient: same revision, so the same idempotency keys


def test_a_permanent_failure_gives_the_next_attempt_a_new_revision_and_key(
    store: DynamoDBProgressStore, key: StepKey
) -> None:
    def rejected(_: RunningStep) -> StepOutcome:
        raise VendorRejected("400: unknown rate card")

    with pytest.raises(VendorRejected):
        run_once(store, key, "runner-a", rejected)
    keys: list[str] = []

    def fixed(running: RunningStep) -> StepOutcome:
        keys.append(idempotency_key(key.run_id, key.step, key.subject, revision=running.revision))
        return StepOutcome("created")

    done = run_once(store, key, "runner-a", fixed)
    assert done.revision == 2
    assert keys == [f"{key.run_id}:metronome.contract:cus_Machinery:r2"]


def test_a_step_held_by_another_runner_is_not_run(store: DynamoDBProgressStore, key: StepKey) -> None:
    store.enrol(key.run_id, key.subject)
    store.claim_step(key.run_id, key.subject, key.step, "runner-a", lease=timedelta(minutes=5))
    with pytest.raises(StepClaimedElsewhere):
        run_once(store, key, "runner-b", lambda _: pytest.fail("ran while another runner held the step"))


def _writes_during(dynamodb: Any, action: Any) -> list[str]:
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        action()
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)
    return [c for c in calls if c != "GetItem"]


def test_noted_ids_are_written_with_the_outcome_not_one_write_each(
    store: DynamoDBProgressStore, key: StepKey, dynamodb: Any
) -> None:
    def body(running: RunningStep) -> StepOutcome:
        running.note({"metronome_customer_id": "m-1", "action.create_customer": "m-1"})
        running.note({"billing_provider_configuration_id": "b-1"})
        return StepOutcome("created")

    writes = _writes_during(dynamodb, lambda: run_once(store, key, "runner-a", body))
    assert writes == ["PutItem", "PutItem"]  # the claim and the outcome
    record = store.get(key.run_id, key.subject).steps[key.step]  # type: ignore[union-attr]
    assert record.status is StepStatus.SUCCEEDED
    assert record.vendor_ids == {
        "metronome_customer_id": "m-1",
        "action.create_customer": "m-1",
        "billing_provider_configuration_id": "b-1",
    }


def test_a_step_that_is_only_a_phase_change_is_claimed_and_done_in_one_write(
    store: DynamoDBProgressStore, key: StepKey, dynamodb: Any
) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    routing = PhaseChange("parallel_run", ingest_alias="acme", dual_write_from=start)
    store.claim_step(key.run_id, key.subject, "metronome.prepare", "runner-a", timedelta(minutes=5))
    first: list[StepDone] = []
    writes = _writes_during(
        dynamodb, lambda: first.append(settle_once(store, key, "runner-a", "parallel_run", routing))
    )
    assert writes == ["PutItem"]
    assert (first[0].outcome, first[0].already_done, first[0].attempt) == ("parallel_run", False, 1)
    fresh = DynamoDBProgressStore(store.table_name, client=dynamodb)  # another container
    again: list[StepDone] = []
    writes = _writes_during(
        dynamodb, lambda: again.append(settle_once(fresh, key, "runner-b", "parallel_run", routing))
    )
    assert writes == []  # read, found done: nothing written
    assert (again[0].outcome, again[0].already_done) == ("parallel_run", True)
    progress = fresh.get(key.run_id, key.subject)
    assert progress is not None and progress.steps[key.step].status is StepStatus.SUCCEEDED
    assert (progress.phase, progress.ingest_alias, progress.dual_write_from) == ("parallel_run", "acme", start)


def test_a_phase_change_step_held_by_another_runner_is_not_settled(store: DynamoDBProgressStore, key: StepKey) -> None:
    store.claim_step(key.run_id, key.subject, key.step, "runner-a", lease=timedelta(minutes=5))
    with pytest.raises(StepClaimedElsewhere):
        settle_once(store, key, "runner-b", "parallel_run", PhaseChange("parallel_run"))
    progress = store.get(key.run_id, key.subject)
    assert progress is not None and progress.phase is None
