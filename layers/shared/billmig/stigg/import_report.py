"""The verification report: per entity, how many records were created, updated, skipped or failed, and why.

Built from the progress store, which every step wrote after reading Stigg back, so the report says what Stigg holds
rather than what was sent.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel

from billmig.progress import ProgressStore, StepStatus, SubjectProgress
from billmig.steps import Step
from billmig.stigg.entity_progress import IMPORT_STEP, VERIFY_STEP, split_entity_key
from billmig.stigg.import_storage import ImportStorage, report_keys

ENTITY_NAMES = {
    "customer": "customers",
    "subscription": "subscriptions",
    "paid": "paid_subscriptions",
    "usage": "usage",
    "chunk": "chunks",
}
CSV_COLUMNS = ("entity", "record", "outcome", "detail", "stigg_id", "stripe_subscription_id", "stripe_outcome")


class ReportRequest(BaseModel):
    import_id: str

    @property
    def run_id(self) -> str:
        return self.import_id

    @property
    def subject(self) -> str | None:
        return None


class ImportReport(BaseModel):
    import_id: str
    totals: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
    json_key: str = ""
    csv_key: str = ""


def _row(item: SubjectProgress) -> dict[str, Any] | None:
    kind, record_key = split_entity_key(item.subject)
    entity = ENTITY_NAMES.get(kind)
    if entity is None:
        return None
    row: dict[str, Any] = {column: None for column in CSV_COLUMNS}
    row.update(entity=entity, record=record_key)
    if kind == "paid":
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
    if kind == "chunk":
        failures = [s for s in item.steps.values() if s.status is StepStatus.FAILED]
        if not failures:
            return None
        row["outcome"] = "failed"
        row["detail"] = "; ".join(s.last_error.message for s in failures if s.last_error) or "failed"
        return row
    step = item.steps.get(VERIFY_STEP) or item.steps.get(IMPORT_STEP)
    if step is None:
        return None
    row["outcome"] = step.outcome if step.outcome != "sent" else "failed"
    row["detail"] = step.detail if step.outcome != "sent" else "sent, never verified"
    if step.status is StepStatus.FAILED and step.last_error is not None:
        row["outcome"], row["detail"] = "failed", step.last_error.message
    row["stigg_id"] = step.vendor_ids.get("stigg_customer_id") or step.vendor_ids.get("stigg_subscription_id")
    return row


def build_report(import_id: str, items: list[SubjectProgress]) -> ImportReport:
    rows = [row for item in items if (row := _row(item)) is not None]
    rows.sort(key=lambda r: (list(ENTITY_NAMES.values()).index(r["entity"]), r["record"]))
    totals: dict[str, dict[str, int]] = {
        entity: {"created": 0, "updated": 0, "skipped": 0, "failed": 0} for entity in ENTITY_NAMES.values()
    }
    for row in rows:
        outcome = row["outcome"] if row["outcome"] in ("created", "updated", "skipped") else "failed"
        totals[row["entity"]][outcome] += 1
    return ImportReport(import_id=import_id, totals=totals, rows=rows)


def report_as_csv(report: ImportReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return buffer.getvalue()


class ReportWritten(BaseModel):
    """What the state machine gets back: the totals and where the report is, not its rows."""

    import_id: str
    totals: dict[str, dict[str, int]]
    json_key: str
    csv_key: str


def write_import_report(request: ReportRequest, store: ProgressStore, storage: ImportStorage) -> ReportWritten:
    report = build_report(request.import_id, store.all_in_run(request.import_id))
    json_key, csv_key = report_keys(request.import_id)
    report.json_key, report.csv_key = json_key, csv_key
    storage.write_json(json_key, report.model_dump(mode="json"))
    storage.write_text(csv_key, report_as_csv(report), content_type="text/csv")
    return ReportWritten(import_id=report.import_id, totals=report.totals, json_key=json_key, csv_key=csv_key)
