"""The progress store on DynamoDB: one item per (run, subject), written with an optimistic version check.

Every change is read-modify-write guarded by `version`, so two runners racing for a step cannot both win: the loser
re-reads and sees the winner's claim. A `by-state` index answers "which subjects of run R are in state S".

The store remembers the last copy of each item it read or wrote, and a change starts from that copy instead of
reading the item again: a step's claim and its outcome are one read and two conditional writes, not two reads and
two writes. The version check is what makes that safe: a copy someone else has since changed fails
the write, and the change is made again on a fresh read (as it is when a copy is refused by the change itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from billmig import progress as rules
from billmig.errors import ProgressStoreUnavailable, StepClaimedElsewhere
from billmig.progress import (
    ErrorRecord,
    PhaseChange,
    StepClaim,
    StepStatus,
    SubjectProgress,
    SubjectState,
    utc_now,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATE_INDEX = "by-state"
SUBJECT_INDEX = "by-subject"
BATCH_WRITE_SIZE = 25  # DynamoDB's BatchWriteItem limit
_T = TypeVar("_T")
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


def _to_item(progress: SubjectProgress) -> dict[str, Any]:
    """What is not set is left out, at every level (a step's lease once it finished, its error while it has none):
    read back, an absent field is its default. Every put carries the whole item, so what it leaves out is parsed,
    sized and stored no more on each of the subject's writes."""
    return {k: _serializer.serialize(v) for k, v in progress.model_dump(mode="json", exclude_none=True).items()}


BATCH_GET_KEYS = 100  # BatchGetItem's limit per request
KNOWN_ITEMS = 256  # copies remembered per store (a warm container's recent subjects)


def _from_item(item: dict[str, Any]) -> SubjectProgress:
    return SubjectProgress.model_validate({k: _deserializer.deserialize(v) for k, v in item.items()})


class DynamoDBProgressStore:
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        now: Callable[[], datetime] = utc_now,
        max_races: int = 8,
    ) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._now = now
        self._max_races = max_races
        self._known: dict[tuple[str, str], SubjectProgress] = {}
        self._known_lock = threading.Lock()

    # -- reads
    def get(self, run_id: str, subject: str) -> SubjectProgress | None:
        response = self._call(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}, "subject": {"S": subject}},
                ConsistentRead=True,
            )
        )
        item = response.get("Item")
        if not item:
            self._forget(run_id, subject)
            return None
        progress = _from_item(item)
        self._remember(progress)
        return progress

    def get_many(self, run_id: str, subjects: list[str]) -> list[SubjectProgress]:
        """These subjects' items (those that exist), strongly consistent, 100 keys a BatchGetItem (DynamoDB's
        limit), what it leaves unprocessed asked again: a watcher's read of the few it still waits for, instead of
        the whole run's items."""
        found: list[SubjectProgress] = []
        for start in range(0, len(subjects), BATCH_GET_KEYS):
            keys: list[Any] = [
                {"run_id": {"S": run_id}, "subject": {"S": s}} for s in subjects[start : start + BATCH_GET_KEYS]
            ]
            while keys:
                response = self._batch_get(keys)
                found += [_from_item(item) for item in response.get("Responses", {}).get(self.table_name, [])]
                unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys", {}).get(self.table_name) or {})
                keys = list(unprocessed.get("Keys", []))
        return found

    def subjects_in_state(self, run_id: str, state: SubjectState) -> list[SubjectProgress]:
        found: list[SubjectProgress] = []
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            IndexName=STATE_INDEX,
            KeyConditionExpression="run_id = :r AND #state = :s",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":r": {"S": run_id}, ":s": {"S": state.value}},
        )
        for page in self._call(lambda: list(pages)):
            found.extend(_from_item(item) for item in page.get("Items", []))
        return sorted(found, key=lambda p: p.subject)

    def all_in_run(self, run_id: str) -> list[SubjectProgress]:
        found: list[SubjectProgress] = []
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="run_id = :r",
            ExpressionAttributeValues={":r": {"S": run_id}},
            ConsistentRead=True,
        )
        for page in self._call(lambda: list(pages)):
            found.extend(_from_item(item) for item in page.get("Items", []))
        return found

    def runs_of(self, subject: str) -> list[str]:
        """The runs the subject is in that gave it a phase, the latest written first (the `by-subject` index)."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            IndexName=SUBJECT_INDEX,
            KeyConditionExpression="subject = :s",
            ExpressionAttributeValues={":s": {"S": subject}},
            ScanIndexForward=False,
        )
        return [
            item["run_id"]["S"] for page in self._call(lambda: list(pages)) for item in page["Items"] if "phase" in item
        ]

    def count_in_run(self, run_id: str) -> int:
        """How many subjects a run holds (a progress figure; a query that returns counts, not items)."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="run_id = :r",
            ExpressionAttributeValues={":r": {"S": run_id}},
            Select="COUNT",
        )
        return sum(int(page.get("Count", 0)) for page in self._call(lambda: list(pages)))

    def count_settled(self, run_id: str, final_step: str) -> int:
        """How many subjects of a run finished `final_step` or stand failed: what a waiter polls for, counted by
        DynamoDB (a filtered COUNT query), so a poll costs no item on the wire however large the run."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="run_id = :r",
            FilterExpression="#steps.#final.#status = :succeeded OR #state = :failed",
            ExpressionAttributeNames={"#steps": "steps", "#final": final_step, "#status": "status", "#state": "state"},
            ExpressionAttributeValues={
                ":r": {"S": run_id},
                ":succeeded": {"S": StepStatus.SUCCEEDED.value},
                ":failed": {"S": SubjectState.FAILED.value},
            },
            Select="COUNT",
            ConsistentRead=True,
        )
        return sum(int(page.get("Count", 0)) for page in self._call(lambda: list(pages)))

    # -- writes
    def record_outcomes(self, records: list[SubjectProgress]) -> None:
        for record in records:
            self._forget(record.run_id, record.subject)
        for start in range(0, len(records), BATCH_WRITE_SIZE):
            pending: list[Any] = [
                {"PutRequest": {"Item": _to_item(record)}} for record in records[start : start + BATCH_WRITE_SIZE]
            ]
            for _ in range(self._max_races):
                pending = self._write_batch(pending)
                if not pending:
                    break
            if pending:
                raise ProgressStoreUnavailable(f"progress table {self.table_name}: {len(pending)} writes unprocessed")

    def enrol(self, run_id: str, subject: str) -> SubjectProgress:
        existing = self.get(run_id, subject)
        if existing is not None:
            return existing
        now = self._now()
        fresh = SubjectProgress(run_id=run_id, subject=subject, enrolled_at=now, updated_at=now)
        try:
            self._put(fresh, expected_version=None)
        except _LostRace:
            winner = self.get(run_id, subject)
            assert winner is not None
            return winner
        return fresh

    def claim_step(
        self, run_id: str, subject: str, step: str, runner: str, lease: timedelta, *, enrols: bool = False
    ) -> StepClaim:
        return self._mutate(
            run_id,
            subject,
            lambda p: rules.claim(p, step, runner, self._now(), lease),
            unread_if_new=enrols,
            unchanged=lambda claim: claim.already_succeeded,  # a step done already: nothing to write
        )

    def remember_vendor_ids(self, run_id: str, subject: str, step: str, vendor_ids: dict[str, str]) -> None:
        self._mutate(run_id, subject, lambda p: rules.remember_vendor_ids(p, step, vendor_ids, self._now()))

    def complete_step(
        self,
        run_id: str,
        subject: str,
        step: str,
        vendor_ids: dict[str, str],
        outcome: str | None = None,
        detail: str | None = None,
    ) -> SubjectProgress:
        return self._mutate(run_id, subject, lambda p: rules.succeed(p, step, vendor_ids, self._now(), outcome, detail))

    def settle_step(
        self,
        run_id: str,
        subject: str,
        step: str,
        runner: str,
        lease: timedelta,
        outcome: str,
        phase: PhaseChange,
        detail: str | None = None,
    ) -> StepClaim:
        def change(progress: SubjectProgress) -> StepClaim:
            now = self._now()
            claim = rules.claim(progress, step, runner, now, lease)
            if not claim.already_succeeded:
                rules.succeed(progress, step, {}, now, outcome, detail, phase)
            return claim

        return self._mutate(run_id, subject, change, unchanged=lambda claim: claim.already_succeeded)

    def fail_step(
        self, run_id: str, subject: str, step: str, error: ErrorRecord, *, vendor_ids: dict[str, str] | None = None
    ) -> SubjectProgress:
        return self._mutate(run_id, subject, lambda p: rules.fail(p, step, error, self._now(), vendor_ids))

    def set_phase(
        self,
        run_id: str,
        subject: str,
        phase: str,
        *,
        ingest_alias: str | None = None,
        dual_write_from: datetime | None = None,
        cutover_at: datetime | None = None,
        clear_cutover_at: bool = False,
        reason: str | None = None,
    ) -> SubjectProgress:
        change = PhaseChange(phase, ingest_alias, dual_write_from, cutover_at, clear_cutover_at, reason)
        return self._mutate(run_id, subject, lambda p: rules.change_phase(p, change, self._now()))

    # -- machinery
    def _mutate(
        self,
        run_id: str,
        subject: str,
        change: Callable[[SubjectProgress], _T],
        *,
        unread_if_new: bool = False,
        unchanged: Callable[[_T], bool] | None = None,
    ) -> _T:
        refused = False  # the last round's write was refused: a copy recalled now is the item that refused it
        for _ in range(self._max_races):
            progress = self._recalled(run_id, subject)
            fresh = progress is None
            current = fresh or refused  # read from the table in this call, not a copy kept from an earlier one
            if progress is None and not unread_if_new:
                progress = self.get(run_id, subject)
            # Once only: a refused enrolling write leaves the item it met in the copy (ALL_OLD), judged next round.
            unread_if_new = False
            # A subject the table does not hold yet is enrolled by this very write (one put, not an enrol and then
            # the change), on the condition that no other writer enrolled it first.
            expected = progress.version if progress is not None else None
            if progress is None:
                now = self._now()
                progress = SubjectProgress(run_id=run_id, subject=subject, enrolled_at=now, updated_at=now)
            try:
                result = change(progress)
            except Exception:
                if fresh:
                    raise
                self._forget(run_id, subject)  # judged on a copy that may be stale: judge it again on the item
                continue
            if unchanged is not None and expected is not None and current and unchanged(result):
                return result  # judged on the item as the table holds it: nothing to write
            progress.version = (expected if expected is not None else 0) + 1
            try:
                self._put(progress, expected_version=expected)
            except _LostRace:
                refused = True  # `_put` dropped the copy, or kept the item that refused the write
                continue
            return result
        raise StepClaimedElsewhere(f"{subject!r} of run {run_id!r}: lost {self._max_races} write races in a row")

    def _recalled(self, run_id: str, subject: str) -> SubjectProgress | None:
        with self._known_lock:
            known = self._known.get((run_id, subject))
        return known.model_copy(deep=True) if known is not None else None

    def _remember(self, progress: SubjectProgress) -> None:
        copy = progress.model_copy(deep=True)
        with self._known_lock:
            self._known.pop((progress.run_id, progress.subject), None)
            self._known[(progress.run_id, progress.subject)] = copy
            while len(self._known) > KNOWN_ITEMS:
                del self._known[next(iter(self._known))]

    def _forget(self, run_id: str, subject: str) -> None:
        with self._known_lock:
            self._known.pop((run_id, subject), None)

    def _put(self, progress: SubjectProgress, *, expected_version: int | None) -> None:
        if expected_version is None:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(run_id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        try:
            self._client.put_item(TableName=self.table_name, Item=_to_item(progress), **condition)
        except ClientError as exc:
            self._forget(progress.run_id, progress.subject)
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                met: Any = exc.response.get("Item")
                if met:  # the item an enrolling write found in its way: the copy the next attempt starts from
                    self._remember(_from_item(met))
                raise _LostRace from exc
            raise _classify(exc) from exc
        except BotoCoreError as exc:
            self._forget(progress.run_id, progress.subject)  # the write may have landed: the copy is unknown
            raise ProgressStoreUnavailable(f"progress table {self.table_name}: {exc}") from exc
        self._remember(progress)

    def _write_batch(self, requests: list[Any]) -> list[Any]:
        """One BatchWriteItem; returns what DynamoDB left unprocessed."""
        try:
            response = self._client.batch_write_item(RequestItems={self.table_name: requests})
        except ClientError as exc:
            raise _classify(exc) from exc
        except BotoCoreError as exc:
            raise ProgressStoreUnavailable(f"progress table {self.table_name}: {exc}") from exc
        return list(response.get("UnprocessedItems", {}).get(self.table_name, []))

    def _batch_get(self, keys: list[Any]) -> Any:
        return self._call(
            lambda: self._client.batch_get_item(RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}})
        )

    def _call(self, request: Callable[[], _T]) -> _T:
        try:
            return request()
        except ClientError as exc:
            raise _classify(exc) from exc
        except BotoCoreError as exc:
            raise ProgressStoreUnavailable(f"progress table {self.table_name}: {exc}") from exc


class _LostRace(Exception):
    """Another writer changed the item between our read and our write."""


def _classify(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _TRANSIENT_CODES:
        return ProgressStoreUnavailable(f"DynamoDB {code}: {exc}")
    return exc
