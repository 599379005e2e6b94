"""The bulk calls of a Stigg import, one chunk at a time, each safe to repeat.

Customers import synchronously, so a chunk is read back at once; subscriptions import in the background, so their
read-back is a separate step that Step Functions retries (`StiggImportPending`) until Stigg has applied the rows.
Usage is reported with `SET` and an idempotency key, so a repeat changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from billmig.bulk import read_all, send_isolating
from billmig.idempotency_keys import STIGG_IDEMPOTENCY_KEY_MAX, idempotency_key
from billmig.progress import ProgressStore, SubjectProgress, utc_now
from billmig.steps import Step
from billmig.stigg.entity_progress import IMPORT_STEP, VERIFY_STEP, finished
from billmig.stigg.errors import StiggImportPending
from billmig.stigg.import_storage import ImportStorage
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import StiggCustomer, StiggSubscription, StiggTarget

_K = TypeVar("_K")
_V = TypeVar("_V")


class ChunkRequest(BaseModel):
    import_id: str
    chunk_key: str

    @property
    def run_id(self) -> str:
        return self.import_id

    @property
    def subject(self) -> str | None:
        return self.chunk_key


class ChunkSummary(BaseModel):
    import_id: str
    chunk_key: str
    records: int
    outcomes: dict[str, int]


class SubscriptionChunkSent(BaseModel):
    import_id: str
    chunk_key: str
    records: int
    task_id: str | None
    existed_before: list[str]
    # Set on the last read-back, after Step Functions' retries ran out: rows still missing are reported as failed.
    final: bool = False

    @property
    def run_id(self) -> str:
        return self.import_id

    @property
    def subject(self) -> str | None:
        return self.chunk_key


def _summary(request: ChunkRequest, items: list[SubjectProgress], step: str) -> ChunkSummary:
    outcomes: dict[str, int] = {}
    for item in items:
        outcome = item.steps[step].outcome or "unknown"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return ChunkSummary(import_id=request.import_id, chunk_key=request.chunk_key, records=len(items), outcomes=outcomes)


# -- customers ---------------------------------------------------------------------------------------------------
def customer_outcome(
    record: CustomerRecord, before: StiggCustomer | None, after: StiggCustomer | None
) -> tuple[str, str | None]:
    """Created, updated, skipped (Stigg's updatedAt rule: it kept a newer customer) or failed."""
    if after is None:
        return "failed", "not in Stigg after the import"
    if before is None:
        return "created", None
    if before.updated_at is not None and after.updated_at == before.updated_at:
        if record.updated_at is not None and before.updated_at > record.updated_at:
            return (
                "skipped",
                f"Stigg's copy was updated at {before.updated_at.isoformat()}, after the record's updatedAt",
            )
        return "updated", "no change"
    return "updated", None


def import_customer_chunk(
    request: ChunkRequest,
    storage: ImportStorage,
    target: StiggTarget,
    store: ProgressStore,
    now: Callable[[], datetime] = utc_now,
) -> ChunkSummary:
    records = [CustomerRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    ids = [r.customer_id for r in records]
    before = read_all(target.find_customer, ids)

    def import_part(part: list[CustomerRecord]) -> list[None]:
        target.import_customers(part)
        return []

    _, rejected = send_isolating(records, import_part)
    after_import = read_all(target.find_customer, ids)
    items = []
    for index, record in enumerate(records):
        after = after_import[record.customer_id]
        outcome, detail = customer_outcome(record, before[record.customer_id], after)
        if index in rejected:
            outcome, detail = "failed", rejected[index]
        items.append(
            finished(
                request.import_id,
                "customer",
                record.key,
                {IMPORT_STEP: (outcome, detail, {"stigg_customer_id": record.customer_id} if after else {})},
                now(),
            )
        )
    store.record_outcomes(items)
    return _summary(request, items, IMPORT_STEP)


# -- subscriptions -----------------------------------------------------------------------------------------------
def _active_by_customer(
    target: StiggTarget, records: list[SubscriptionRecord]
) -> dict[tuple[str, str | None], list[StiggSubscription]]:
    pairs = sorted({(r.customer_id, r.resource_id) for r in records}, key=lambda p: (p[0], p[1] or ""))
    return read_all(lambda pair: target.active_subscriptions(*pair), pairs)


def _matching(record: SubscriptionRecord, active: list[StiggSubscription]) -> StiggSubscription | None:
    for subscription in active:
        if subscription.subscription_id == record.subscription_id:
            return subscription
    for subscription in active:
        if subscription.plan_id == record.plan_id:
            return subscription
    return None


def import_subscription_chunk(
    request: ChunkRequest,
    storage: ImportStorage,
    target: StiggTarget,
    store: ProgressStore,
    now: Callable[[], datetime] = utc_now,
) -> SubscriptionChunkSent:
    records = [SubscriptionRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    active = _active_by_customer(target, records)
    existed = [r.key for r in records if _matching(r, active[(r.customer_id, r.resource_id)]) is not None]
    task_id = target.import_subscriptions([(r.subscription_id or "", r) for r in records])
    store.record_outcomes(
        [
            finished(request.import_id, "subscription", r.key, {IMPORT_STEP: ("sent", task_id, {})}, now())
            for r in records
        ]
    )
    return SubscriptionChunkSent(
        import_id=request.import_id,
        chunk_key=request.chunk_key,
        records=len(records),
        task_id=task_id,
        existed_before=existed,
    )


def verify_subscription_chunk(
    sent: SubscriptionChunkSent,
    storage: ImportStorage,
    target: StiggTarget,
    store: ProgressStore,
    now: Callable[[], datetime] = utc_now,
) -> ChunkSummary:
    records = [SubscriptionRecord.model_validate(raw) for raw in storage.read_json(sent.chunk_key)]
    active = _active_by_customer(target, records)
    found = {r.key: _matching(r, active[(r.customer_id, r.resource_id)]) for r in records}
    new_records = [r for r in records if r.key not in sent.existed_before]
    if not sent.final and new_records and all(found[r.key] is None for r in new_records):
        raise StiggImportPending(
            f"import {sent.import_id}: none of the {len(new_records)} new subscriptions of {sent.chunk_key} is in "
            f"Stigg yet (task {sent.task_id})"
        )
    existed = set(sent.existed_before)
    items = []
    for record in records:
        subscription = found[record.key]
        detail: str | None
        if subscription is None:
            outcome, detail, ids = "failed", "not in Stigg after the import: Stigg skips invalid rows silently", {}
        else:
            outcome = "updated" if record.key in existed else "created"
            detail = _differences(record, subscription)
            ids = {"stigg_subscription_id": subscription.subscription_id}
            if detail:
                outcome = "failed"
        items.append(
            finished(
                sent.import_id,
                "subscription",
                record.key,
                {IMPORT_STEP: ("sent", sent.task_id, {}), VERIFY_STEP: (outcome, detail, ids)},
                now(),
            )
        )
    store.record_outcomes(items)
    return _summary(ChunkRequest(import_id=sent.import_id, chunk_key=sent.chunk_key), items, VERIFY_STEP)


def _differences(record: SubscriptionRecord, subscription: StiggSubscription) -> str | None:
    problems = []
    if subscription.plan_id != record.plan_id:
        problems.append(f"plan {subscription.plan_id!r} instead of {record.plan_id!r}")
    wanted_addons = {a.addon_id: a.quantity for a in record.addons}
    if wanted_addons and subscription.addons != wanted_addons:
        problems.append(f"add-ons {subscription.addons} instead of {wanted_addons}")
    if (
        record.start_date is not None
        and subscription.start_date is not None
        and abs((subscription.start_date - record.start_date).total_seconds()) >= 1
    ):
        problems.append(f"start {subscription.start_date.isoformat()} instead of {record.start_date.isoformat()}")
    return "; ".join(problems) or None


# -- usage -------------------------------------------------------------------------------------------------------
def usage_idempotency_key(import_id: str, record: UsageRecord) -> str:
    """Same import, record and value -> same key: Stigg ignores the repeat for 7 days."""
    return idempotency_key(
        import_id, Step.STIGG_USAGE, f"{record.key}={record.usage!r}", max_length=STIGG_IDEMPOTENCY_KEY_MAX
    )


def report_usage_chunk(
    request: ChunkRequest,
    storage: ImportStorage,
    target: StiggTarget,
    store: ProgressStore,
    now: Callable[[], datetime] = utc_now,
) -> ChunkSummary:
    records = [UsageRecord.model_validate(raw) for raw in storage.read_json(request.chunk_key)]
    keyed = [(usage_idempotency_key(request.import_id, r), r) for r in records]
    readings, rejected = send_isolating(keyed, target.report_usage)
    by_key = {f"{u.customer_id}/{u.resource_id or '-'}/{u.feature_id}": u for u in readings}
    items = []
    for index, record in enumerate(records):
        reading = by_key.get(record.key)
        if index in rejected:
            outcome, detail = "failed", rejected[index]
        elif reading is None:
            outcome, detail = "failed", "Stigg did not answer for this usage"
        elif abs(reading.current_usage - record.usage) > 1e-9:
            outcome, detail = "failed", f"current usage {reading.current_usage} instead of {record.usage}"
        else:
            outcome, detail = "updated", f"current usage {reading.current_usage:g}"
        items.append(finished(request.import_id, "usage", record.key, {IMPORT_STEP: (outcome, detail, {})}, now()))
    store.record_outcomes(items)
    return _summary(request, items, IMPORT_STEP)
