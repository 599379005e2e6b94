"""The bulk calls of a Stigg import, one chunk at a time, each safe to repeat and each resumable.

A chunk's progress (`ChunkProgress`) is written after every call that settles records, so a Task that Step Functions
retries sends only what is not settled yet. Read-backs are in bulk: which records Stigg held before the first send is
one filtered list call per chunk (its `totalCount` settles "none" and "all"); customers import synchronously, so a
successful call is their read-back (only records carrying `updatedAt` are read again, for Stigg's skip rule);
subscriptions import in the background, so a separate step reads Stigg's import task, which names each row it refused,
and is retried with `StiggImportPending` until the task has run. Usage is SET with an idempotency key, its reply is
its read-back, and a chunk's calls go out several at a time within Stigg's limits.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from pydantic import BaseModel

from billmig.bulk import chunked, send_isolating
from billmig.errors import MigrationError
from billmig.idempotency_keys import STIGG_IDEMPOTENCY_KEY_MAX, idempotency_key
from billmig.steps import Step
from billmig.stigg.chunk_progress import ChunkProgress, ChunkProgressStore
from billmig.stigg.errors import StiggImportPending
from billmig.stigg.import_events import ImportEvent
from billmig.stigg.import_plan import USAGES_PER_CALL
from billmig.stigg.import_storage import ImportStorage
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import StiggTarget, UsageReading

USAGE_CALLS_AT_ONCE = 4  # a chunk's usage calls in flight together; the pacer keeps them within Stigg's limits


class ChunkRequest(ImportEvent):
    chunk_key: str

    @property
    def subject(self) -> str | None:
        return self.chunk_key


class ChunkSummary(BaseModel):
    import_id: str
    chunk_key: str
    records: int
    outcomes: dict[str, int]


class SubscriptionChunkSent(ChunkRequest):
    records: int
    # Set on the last read-back, after Step Functions' retries ran out: rows still pending are reported as failed.
    final: bool = False


def _progress(chunks: ChunkProgressStore, import_id: str, chunk_key: str, kind: str, records: int) -> ChunkProgress:
    return chunks.load_chunk(import_id, chunk_key) or ChunkProgress(
        import_id=import_id, chunk_key=chunk_key, kind=kind, records=records
    )


def _summary(progress: ChunkProgress) -> ChunkSummary:
    outcomes: dict[str, int] = {}
    for outcome in progress.outcomes.values():
        outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
    return ChunkSummary(
        import_id=progress.import_id, chunk_key=progress.chunk_key, records=progress.records, outcomes=outcomes
    )


# -- customers ---------------------------------------------------------------------------------------------------
def import_customer_chunk(
    request: ChunkRequest, storage: ImportStorage, target: StiggTarget, chunks: ChunkProgressStore
) -> ChunkSummary:
    records = [CustomerRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    progress = _progress(chunks, request.import_id, request.chunk_key, "customer", len(records))
    if not progress.surveyed:
        existed = target.existing_customer_ids([r.customer_id for r in records])
        dated = [r.customer_id for r in records if r.updated_at is not None and r.customer_id in existed]
        before = target.customers_by_id(dated) if dated else {}
        progress.existed = sorted(existed)
        progress.updated_at_before = {cid: c.updated_at.isoformat() for cid, c in before.items() if c.updated_at}
        progress.surveyed = True
        chunks.save_chunk(progress)
    existed = set(progress.existed)
    pending = [r for r in records if r.key not in progress.outcomes]

    def import_part(part: list[CustomerRecord]) -> list[None]:
        target.import_customers(part)
        return []

    def accepted(_offset: int, part: list[CustomerRecord], _answers: list[None]) -> None:
        for r in part:
            progress.record(r.key, "updated" if r.customer_id in existed else "created", stigg_id=r.customer_id)
        chunks.save_chunk(progress)

    def rejected(offset: int, reason: str) -> None:
        progress.record(pending[offset].key, "failed", reason)
        chunks.save_chunk(progress)

    if pending:
        send_isolating(pending, import_part, on_accepted=accepted, on_rejected=rejected)
    _apply_updated_at_rule(records, progress, target, chunks)
    return _summary(progress)


def _apply_updated_at_rule(
    records: list[CustomerRecord], progress: ChunkProgress, target: StiggTarget, chunks: ChunkProgressStore
) -> None:
    """Stigg skips a record whose customer it updated after the record's `updatedAt`, silently: a customer whose
    `updatedAt` in Stigg did not move across the import was skipped. Only records that carry `updatedAt` are read."""
    dated = [
        r
        for r in records
        if r.customer_id in progress.updated_at_before and progress.outcomes[r.key].outcome == "updated"
    ]
    if not dated:
        return
    after = target.customers_by_id([r.customer_id for r in dated])
    for record in dated:
        now = after.get(record.customer_id)
        kept = progress.updated_at_before[record.customer_id]
        if now is not None and now.updated_at is not None and now.updated_at.isoformat() == kept:
            progress.record(
                record.key,
                "skipped",
                f"Stigg's copy was updated at {kept}, after the record's updatedAt",
                stigg_id=record.customer_id,
            )
    chunks.save_chunk(progress)


# -- subscriptions -----------------------------------------------------------------------------------------------
UNTRACKED = "untracked:"  # an import call that answered no task id: its rows are read back by id instead


def import_subscription_chunk(
    request: ChunkRequest, storage: ImportStorage, target: StiggTarget, chunks: ChunkProgressStore
) -> SubscriptionChunkSent:
    records = [SubscriptionRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    progress = _progress(chunks, request.import_id, request.chunk_key, "subscription", len(records))
    if not progress.surveyed:
        progress.existed = sorted(target.existing_subscription_ids([r.subscription_id or "" for r in records]))
        progress.surveyed = True
        chunks.save_chunk(progress)
    sent = {key for keys in progress.tasks.values() for key in keys}
    unsent = [r for r in records if r.key not in progress.outcomes and r.key not in sent]

    def import_part(part: list[SubscriptionRecord]) -> list[str | None]:
        return [target.import_subscriptions([(r.subscription_id or "", r) for r in part])]

    def accepted(offset: int, part: list[SubscriptionRecord], answers: list[str | None]) -> None:
        task_id = answers[0] or f"{UNTRACKED}{offset}"
        progress.tasks[task_id] = [r.key for r in part]
        chunks.save_chunk(progress)

    def rejected(offset: int, reason: str) -> None:
        progress.record(unsent[offset].key, "failed", reason)
        chunks.save_chunk(progress)

    if unsent:
        send_isolating(unsent, import_part, on_accepted=accepted, on_rejected=rejected)
    return SubscriptionChunkSent(import_id=request.import_id, chunk_key=request.chunk_key, records=len(records))


def verify_subscription_chunk(
    sent: SubscriptionChunkSent, storage: ImportStorage, target: StiggTarget, chunks: ChunkProgressStore
) -> ChunkSummary:
    records = {r.key: r for r in (SubscriptionRecord.model_validate(raw) for raw in storage.read_json(sent.chunk_key))}
    progress = _progress(chunks, sent.import_id, sent.chunk_key, "subscription", len(records))
    existed = set(progress.existed)

    def settle(record: SubscriptionRecord, error: str | None) -> None:
        sid = record.subscription_id or ""
        if error:
            progress.record(record.key, "failed", error)
        else:
            progress.record(record.key, "updated" if sid in existed else "created", stigg_id=sid)

    for task_id, keys in progress.tasks.items():
        open_records = [records[k] for k in keys if k not in progress.outcomes]
        if not open_records:
            continue
        if task_id.startswith(UNTRACKED):
            found = target.subscriptions_by_id([r.subscription_id or "" for r in open_records])
            for record in open_records:
                missing = "not in Stigg after the import: Stigg skips invalid rows silently"
                settle(record, None if (record.subscription_id or "") in found else missing)
            continue
        task = target.import_task(task_id)
        if task is None or task.pending:
            if not sent.final:
                chunks.save_chunk(progress)
                raise StiggImportPending(
                    f"import {sent.import_id}: Stigg's import task {task_id} for {sent.chunk_key} has not run yet"
                )
            for record in open_records:
                progress.record(record.key, "failed", f"Stigg's import task {task_id} never ran")
            continue
        for record in open_records:
            error = task.errors.get(record.subscription_id or "") or task.errors.get(record.customer_id)
            if error is None and task.status in ("FAILED", "CANCELED"):
                error = f"Stigg's import task {task_id} ended {task.status}"
            settle(record, error)
    chunks.save_chunk(progress)
    return _summary(progress)


# -- usage -------------------------------------------------------------------------------------------------------
def usage_idempotency_key(import_id: str, record: UsageRecord) -> str:
    """Same import, record and value -> same key: Stigg ignores the repeat for 7 days."""
    return idempotency_key(
        import_id, Step.STIGG_USAGE, f"{record.key}={record.usage!r}", max_length=STIGG_IDEMPOTENCY_KEY_MAX
    )


def _usage_outcome(record: UsageRecord, reading: UsageReading | None) -> tuple[str, str]:
    if reading is None:
        return "failed", "Stigg did not answer for this usage"
    if abs(reading.current_usage - record.usage) > 1e-9:
        return "failed", f"current usage {reading.current_usage} instead of {record.usage}"
    return "updated", f"current usage {reading.current_usage:g}"


def report_usage_chunk(
    request: ChunkRequest, storage: ImportStorage, target: StiggTarget, chunks: ChunkProgressStore
) -> ChunkSummary:
    records = [UsageRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    progress = _progress(chunks, request.import_id, request.chunk_key, "usage", len(records))
    pending = [r for r in records if r.key not in progress.outcomes]

    def send(part: list[UsageRecord]) -> tuple[list[UsageRecord], list[UsageReading], dict[int, str]]:
        keyed = [(usage_idempotency_key(request.import_id, r), r) for r in part]
        readings, rejected = send_isolating(keyed, target.report_usage)
        return part, readings, rejected

    first_error: MigrationError | None = None
    with ThreadPoolExecutor(max_workers=USAGE_CALLS_AT_ONCE) as pool:
        futures: list[Future[tuple[list[UsageRecord], list[UsageReading], dict[int, str]]]] = [
            pool.submit(send, part) for part in chunked(pending, USAGES_PER_CALL)
        ]
        for future in as_completed(futures):
            try:
                part, readings, rejected = future.result()
            except MigrationError as exc:  # typed by the adapter; the settled parts are recorded first
                first_error = first_error or exc
                continue
            by_key = {f"{u.customer_id}/{u.resource_id or '-'}/{u.feature_id}": u for u in readings}
            for index, record in enumerate(part):
                if index in rejected:
                    progress.record(record.key, "failed", rejected[index])
                else:
                    progress.record(record.key, *_usage_outcome(record, by_key.get(record.key)))
            chunks.save_chunk(progress)
    if first_error is not None:
        raise first_error
    return _summary(progress)
