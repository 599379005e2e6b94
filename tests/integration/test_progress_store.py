"""The DynamoDB progress store, for real against the template's table on the local stack."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.errors import StepClaimedElsewhere
from billmig.progress import ErrorRecord, SubjectState
from billmig_local.stack import LocalStack


@pytest.fixture()
def store(local_stack: LocalStack, dynamodb: Any) -> DynamoDBProgressStore:
    return DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)


@pytest.fixture()
def batch() -> str:
    return f"batch-{uuid.uuid4().hex[:8]}"


def test_the_table_is_deployed_with_recovery_and_protection(local_stack: LocalStack, dynamodb: Any) -> None:
    table = dynamodb.describe_table(TableName=local_stack.outputs["ProgressTableName"])["Table"]
    assert table["DeletionProtectionEnabled"] is True
    indexes = sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"])
    assert indexes == ["by-ingest-alias", "by-state", "by-subject"]
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])
    assert (
        backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        == "ENABLED"
    )


def test_enrol_is_idempotent(store: DynamoDBProgressStore, batch: str) -> None:
    first = store.enrol(batch, "cus_AAAA")
    second = store.enrol(batch, "cus_AAAA")
    assert first.enrolled_at == second.enrolled_at
    assert store.subjects_in_state(batch, SubjectState.ENROLLED)[0].subject == "cus_AAAA"


def test_of_many_racing_runners_exactly_one_claims_the_step(store: DynamoDBProgressStore, batch: str) -> None:
    store.enrol(batch, "cus_RACE")
    winners: list[str] = []
    losers: list[str] = []
    barrier = threading.Barrier(6)

    def runner(name: str) -> None:
        barrier.wait()
        try:
            claim = store.claim_step(batch, "cus_RACE", "contract", name, timedelta(minutes=5))
        except StepClaimedElsewhere:
            losers.append(name)
        else:
            assert not claim.already_succeeded
            winners.append(name)

    threads = [threading.Thread(target=runner, args=(f"runner-{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert len(losers) == 5
    progress = store.get(batch, "cus_RACE")
    assert progress is not None
    assert progress.steps["contract"].runner == winners[0]
    assert progress.steps["contract"].attempts == 1


def test_a_completed_step_is_not_claimed_again_and_its_ids_are_kept(store: DynamoDBProgressStore, batch: str) -> None:
    store.claim_step(batch, "cus_DONE", "prepare", "r1", timedelta(minutes=5))
    store.remember_vendor_ids(batch, "cus_DONE", "prepare", {"metronome_customer_id": "m-1"})
    store.complete_step(batch, "cus_DONE", "prepare", {"stripe_link": "cus_DONE"})
    again = store.claim_step(batch, "cus_DONE", "prepare", "r2", timedelta(minutes=5))
    assert again.already_succeeded
    assert again.record.vendor_ids == {"metronome_customer_id": "m-1", "stripe_link": "cus_DONE"}
    assert [p.subject for p in store.subjects_in_state(batch, SubjectState.SUCCEEDED)] == ["cus_DONE"]


def test_the_state_index_answers_which_customers_failed(store: DynamoDBProgressStore, batch: str) -> None:
    now = datetime.now(UTC)
    for n in range(5):
        store.claim_step(batch, f"cus_{n:04d}", "contract", "r", timedelta(minutes=5))
    for n in (1, 3):
        store.fail_step(
            batch,
            f"cus_{n:04d}",
            "contract",
            ErrorRecord(type="VendorRejected", message="bad rate card", transient=False, at=now),
        )
    store.complete_step(batch, "cus_0000", "contract", {})
    assert [p.subject for p in store.subjects_in_state(batch, SubjectState.FAILED)] == ["cus_0001", "cus_0003"]
    assert [p.subject for p in store.subjects_in_state(batch, SubjectState.RUNNING)] == ["cus_0002", "cus_0004"]
    failed = store.get(batch, "cus_0003")
    assert failed is not None
    error = failed.steps["contract"].last_error
    assert error is not None
    assert (error.type, error.transient) == ("VendorRejected", False)


def test_count_settled_counts_the_final_step_done_and_the_failed_only(store: DynamoDBProgressStore, batch: str) -> None:
    final, lease = "metronome.parallel_run", timedelta(minutes=5)
    for subject in ("cus_DONE", "cus_FAIL", "cus_MID", "cus_NEW"):
        store.enrol(batch, subject)
    store.claim_step(batch, "cus_DONE", final, "r", lease)
    store.complete_step(batch, "cus_DONE", final, {}, "parallel_run")
    store.claim_step(batch, "cus_FAIL", "metronome.contract", "r", lease)
    error = ErrorRecord(type="Boom", message="no", transient=False, at=datetime.now(UTC))
    store.fail_step(batch, "cus_FAIL", "metronome.contract", error)
    store.claim_step(batch, "cus_MID", "metronome.contract", "r", lease)
    store.complete_step(batch, "cus_MID", "metronome.contract", {}, "created")
    assert store.count_settled(batch, final) == 2
    assert store.count_settled(batch, "metronome.contract") == 2  # MID done with it, FAIL failed


def test_get_many_reads_just_the_subjects_asked_for_past_batch_get_limits(
    store: DynamoDBProgressStore, batch: str
) -> None:
    """More subjects than one BatchGetItem takes (100), one never enrolled, and one of another run: each read once."""
    subjects = [f"cus_{i:04d}" for i in range(130)]
    for subject in subjects:
        store.enrol(batch, subject)
    store.enrol(f"{batch}-other", "cus_0000")
    store.set_phase(batch, "cus_0007", "parallel_run")
    found = store.get_many(batch, [*subjects[5:125], "cus_never"])
    assert sorted(p.subject for p in found) == subjects[5:125]
    assert {p.run_id for p in found} == {batch}
    assert [p.phase for p in found if p.subject == "cus_0007"] == ["parallel_run"]
    assert store.get_many(batch, []) == []


class _CountingClient:
    """The real DynamoDB client, counting the calls the store makes through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("get_paginator"):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return counted


def test_a_step_is_one_read_and_conditional_writes_from_the_copy_the_store_keeps(
    local_stack: LocalStack, dynamodb: Any, batch: str
) -> None:
    counting = _CountingClient(dynamodb)
    store = DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=counting)  # type: ignore[arg-type]
    store.enrol(batch, "cus_COPY")
    counting.calls.clear()
    store.claim_step(batch, "cus_COPY", "contract", "r1", timedelta(minutes=5))
    store.remember_vendor_ids(batch, "cus_COPY", "contract", {"metronome_contract_id": "c-1"})
    store.complete_step(batch, "cus_COPY", "contract", {}, "created")
    assert counting.calls == ["put_item", "put_item", "put_item"]
    stored = store.get(batch, "cus_COPY")
    assert stored is not None and stored.version == 3
    assert stored.steps["contract"].vendor_ids == {"metronome_contract_id": "c-1"}


def test_a_copy_another_writer_has_changed_since_is_not_written_back(
    local_stack: LocalStack, dynamodb: Any, batch: str
) -> None:
    """Two stores (two warm containers): each keeps its own copy; the version check turns a write from a stale copy
    into a fresh read and the change made again, so neither writer's change is lost."""
    table = local_stack.outputs["ProgressTableName"]
    first, second = DynamoDBProgressStore(table, client=dynamodb), DynamoDBProgressStore(table, client=dynamodb)
    first.claim_step(batch, "cus_STALE", "prepare", "r1", timedelta(minutes=5))
    second.remember_vendor_ids(batch, "cus_STALE", "prepare", {"metronome_customer_id": "m-1"})
    first.remember_vendor_ids(batch, "cus_STALE", "prepare", {"billing_configuration_id": "b-1"})
    stored = DynamoDBProgressStore(table, client=dynamodb).get(batch, "cus_STALE")
    assert stored is not None
    assert stored.steps["prepare"].vendor_ids == {"metronome_customer_id": "m-1", "billing_configuration_id": "b-1"}
    assert stored.version == 3


def test_a_claim_refused_on_a_stale_copy_is_judged_again_on_the_item(
    local_stack: LocalStack, dynamodb: Any, batch: str
) -> None:
    """The first store's copy says r1 holds the step; meanwhile r1's attempt failed (recorded by another store).
    A claim by r2 must see the failure, not the stale lease."""
    table = local_stack.outputs["ProgressTableName"]
    first, second = DynamoDBProgressStore(table, client=dynamodb), DynamoDBProgressStore(table, client=dynamodb)
    first.claim_step(batch, "cus_LEASE", "contract", "r1", timedelta(minutes=5))
    error = ErrorRecord(type="VendorUnavailable", message="503", transient=True, at=datetime.now(UTC))
    second.fail_step(batch, "cus_LEASE", "contract", error)
    claim = first.claim_step(batch, "cus_LEASE", "contract", "r2", timedelta(minutes=5))
    assert (claim.record.runner, claim.attempt) == ("r2", 2)
    with pytest.raises(StepClaimedElsewhere):
        second.claim_step(batch, "cus_LEASE", "contract", "r3", timedelta(minutes=5))


def test_a_first_claim_enrols_the_subject_in_its_own_write(local_stack: LocalStack, dynamodb: Any, batch: str) -> None:
    """A subject's first step is one read and one conditional put, not a read, an enrolment and then the claim."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        store = DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=dynamodb)
        claim = store.claim_step(batch, "cus_FIRST", "metronome.snapshot", "runner-a", timedelta(minutes=5))
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)
    assert calls == ["GetItem", "PutItem"]
    stored = store.get(batch, "cus_FIRST")
    assert stored is not None and stored.version == 1 and claim.attempt == 1
    assert stored.state is SubjectState.RUNNING and stored.steps["metronome.snapshot"].runner == "runner-a"


def test_an_item_leaves_out_what_is_not_set_and_reads_back_the_same(
    store: DynamoDBProgressStore, dynamodb: Any, batch: str
) -> None:
    """Every put carries the whole item: a finished step's lease and an absent error are not in it."""
    store.claim_step(batch, "cus_LEAN", "metronome.prepare", "r1", timedelta(minutes=5))
    written = store.complete_step(batch, "cus_LEAN", "metronome.prepare", {"metronome_customer_id": "m-1"}, "created")
    raw = dynamodb.get_item(
        TableName=store.table_name, Key={"run_id": {"S": batch}, "subject": {"S": "cus_LEAN"}}, ConsistentRead=True
    )["Item"]
    step = raw["steps"]["M"]["metronome.prepare"]["M"]
    assert "NULL" not in str(raw)
    assert {"lease_until", "last_error", "detail"}.isdisjoint(step)
    read = DynamoDBProgressStore(store.table_name, client=dynamodb).get(batch, "cus_LEAN")
    assert read == written


def test_an_enrolling_claim_is_one_write_and_a_subject_that_exists_costs_only_that_write(
    local_stack: LocalStack, dynamodb: Any, batch: str
) -> None:
    """`enrols`: no read before the subject's first write; if the subject is there after all (a resumed run), the
    refused write brings the item back (ALL_OLD) and the claim is judged on it, with no read either."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    table = local_stack.outputs["ProgressTableName"]
    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        first = DynamoDBProgressStore(table, client=dynamodb)
        claim = first.claim_step(batch, "cus_ENROL", "metronome.snapshot", "r1", timedelta(minutes=5), enrols=True)
        assert calls == ["PutItem"] and claim.attempt == 1
        first.complete_step(batch, "cus_ENROL", "metronome.snapshot", {"snapshot_key": "k"}, "snapshotted")
        calls.clear()
        resumed = DynamoDBProgressStore(table, client=dynamodb)  # another container: no copy of the item
        again = resumed.claim_step(batch, "cus_ENROL", "metronome.snapshot", "r2", timedelta(minutes=5), enrols=True)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)
    assert calls == ["PutItem"]  # refused; the item it met says the step is done
    assert again.already_succeeded and again.record.vendor_ids == {"snapshot_key": "k"}
    stored = DynamoDBProgressStore(table, client=dynamodb).get(batch, "cus_ENROL")
    assert stored is not None and stored.version == 2
