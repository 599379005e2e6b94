"""The verification report: per entity, how many records were created, updated, skipped or failed, and why.

Built from the progress store, which every step wrote after reading Stigg back (chunk progress for the bulk records,
subject items for paid plans and caught chunk failures), so the report says what Stigg holds rather than what was
sent; a record whose chunk finally failed is counted failed, with the chunk's error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from billmig.progress import ProgressStore, StepStatus, SubjectProgress
from billmig.steps import Step
from billmig.stigg.chunk_progress import ChunkProgress, ChunkProgressStore
from billmig.stigg.entity_progress import split_entity_key
from billmig.stigg.import_events import ImportEvent
from billmig.stigg.import_storage import ImportStorage, manifest_key, report_keys
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord

ENTITY_NAMES = {
    "customer": "customers",
    "subscription": "subscriptions",
    "paid": "paid_subscriptions",
    "usage": "usage",
    "chunk": "chunks",
}
CSV_COLUMNS = ("entity", "record", "outcome", "detail", "stigg_id", "stripe_subscription_id", "stripe_outcome")


class ReportRequest(ImportEvent):
    """The whole import: its report."""


COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed with errors"
FAILED_NAMED = 20  # failed records the state machine's result names (all are in the report)


class ImportReport(BaseModel):
    import_id: str
    status: str = COMPLETED
    failed: int = 0
    totals: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
    json_key: str = ""
    csv_key: str = ""


def _paid_row(item: SubjectProgress, record_key: str) -> dict[str, Any]:
    row: dict[str, Any] = {column: None for column in CSV_COLUMNS}
    row.update(entity="paid_subscriptions", record=record_key)
    provision = item.steps.get(Step.STIGG_PROVISION)
    cancel = item.steps.get(Step.STRIPE_CANCEL)
    if provision is None or provision.status is not StepStatus.SUCCEEDED:
        row["outcome"] = "failed"
        error = provision.last_error if provision else None
        row["detail"] = error.message if error else "not provisioned"
    else:
        row["outcome"] = provision.outcome or "created"
        row["stigg_id"] = provision.vendor_ids.get("stigg_subscription_id")
    if cancel is not None:
        row["stripe_subscription_id"] = cancel.vendor_ids.get("stripe_subscription_id")
        if cancel.status is StepStatus.SUCCEEDED:
            row["stripe_outcome"] = cancel.outcome
        else:
            row["stripe_outcome"] = "failed"
            row["outcome"] = "failed"
            row["detail"] = cancel.last_error.message if cancel.last_error else "Stripe cancel did not finish"
    elif row["outcome"] != "failed":
        row["outcome"], row["detail"] = "failed", "provisioned in Stigg; Stripe subscription not cancelled yet"
    return row


def _chunk_failure(item: SubjectProgress) -> str | None:
    failures = [s for s in item.steps.values() if s.status is StepStatus.FAILED]
    if not failures:
        return None
    return "; ".join(s.last_error.message for s in failures if s.last_error) or "failed"


_RECORD_MODELS: dict[str, type[CustomerRecord] | type[SubscriptionRecord] | type[UsageRecord]] = {
    "customer": CustomerRecord,
    "subscription": SubscriptionRecord,
    "usage": UsageRecord,
}


def _chunk_rows(
    kind: str, key: str, progress: ChunkProgress | None, failure: str | None, storage: ImportStorage
) -> Iterator[dict[str, Any]]:
    """Every record of a chunk: its outcome, or failed with the chunk's caught error when it has none."""
    outcomes = progress.outcomes if progress is not None else {}
    if progress is not None and len(outcomes) >= progress.records:
        record_keys = list(outcomes)
    else:  # some records never settled: the chunk file names them
        record_keys = [_RECORD_MODELS[kind].model_validate(raw).key for raw in storage.read_json(key)]
    unsettled = failure or "not settled: the chunk's Task never finished"
    for record_key in record_keys:
        row: dict[str, Any] = {column: None for column in CSV_COLUMNS}
        row.update(entity=ENTITY_NAMES[kind], record=record_key)
        found = outcomes.get(record_key)
        if found is None:
            row["outcome"], row["detail"] = "failed", unsettled
        else:
            row["outcome"], row["detail"], row["stigg_id"] = found.outcome, found.detail, found.stigg_id
        yield row


def build_report(
    import_id: str,
    items: list[SubjectProgress],
    chunks: list[ChunkProgress],
    manifest: dict[str, list[str]],
    storage: ImportStorage,
) -> ImportReport:
    failures: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for item in items:
        kind, record_key = split_entity_key(item.subject)
        if kind == "paid":
            rows.append(_paid_row(item, record_key))
        elif kind == "chunk" and (failure := _chunk_failure(item)) is not None:
            failures[record_key] = failure
    by_key = {c.chunk_key: c for c in chunks}
    for kind, keys in manifest.items():
        for key in keys:
            progress = by_key.get(key)
            failure = failures.get(key)
            settled = progress is not None and len(progress.outcomes) >= progress.records
            if failure is not None and not settled:
                rows.append({**dict.fromkeys(CSV_COLUMNS), "entity": "chunks", "record": key, "outcome": "failed",
                             "detail": failure})  # fmt: skip
            rows.extend(_chunk_rows(kind, key, progress, failure, storage))
    rows.sort(key=lambda r: (list(ENTITY_NAMES.values()).index(r["entity"]), r["record"]))
    totals: dict[str, dict[str, int]] = {
        entity: {"created": 0, "updated": 0, "skipped": 0, "failed": 0} for entity in ENTITY_NAMES.values()
    }
    for row in rows:
        outcome = row["outcome"] if row["outcome"] in ("created", "updated", "skipped") else "failed"
        row["outcome"] = outcome
        totals[row["entity"]][outcome] += 1
    failed = sum(t["failed"] for entity, t in totals.items() if entity != "chunks")
    return ImportReport(
        import_id=import_id,
        status=COMPLETED_WITH_ERRORS if failed else COMPLETED,
        failed=failed,
        totals=totals,
        rows=rows,
    )


def report_as_csv(report: ImportReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return buffer.getvalue()


class ReportWritten(BaseModel):
    """What the state machine gets back: "completed" or "completed with errors", the totals, the first failed
    records, and where the report is; not its rows."""

    import_id: str
    status: str
    failed: int
    failed_records: list[str]
    totals: dict[str, dict[str, int]]
    json_key: str
    csv_key: str


def write_import_report(
    request: ReportRequest, store: ProgressStore, chunks: ChunkProgressStore, storage: ImportStorage
) -> ReportWritten:
    manifest = storage.read_json(manifest_key(request.import_id))
    report = build_report(
        request.import_id, store.all_in_run(request.import_id), chunks.chunks_of(request.import_id), manifest, storage
    )
    json_key, csv_key = report_keys(request.import_id)
    report.json_key, report.csv_key = json_key, csv_key
    storage.write_json(json_key, report.model_dump(mode="json"))
    storage.write_text(csv_key, report_as_csv(report), content_type="text/csv")
    failed = [
        f"{r['entity']} {r['record']}: {r['detail']}"
        for r in report.rows
        if r["outcome"] == "failed" and r["entity"] != "chunks"
    ]
    return ReportWritten(
        import_id=report.import_id,
        status=report.status,
        failed=report.failed,
        failed_records=failed[:FAILED_NAMED],
        totals=report.totals,
        json_key=json_key,
        csv_key=csv_key,
    )
