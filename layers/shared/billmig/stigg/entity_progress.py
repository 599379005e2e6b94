"""How import records are tracked in the progress store: one item per record, keyed `<kind>#<record key>`.

Bulk calls are upserts, so a chunk's outcome is simply written over whatever an earlier attempt wrote.
"""

from __future__ import annotations

from datetime import datetime

from billmig.progress import StepRecord, StepStatus, SubjectProgress, SubjectState
from billmig.steps import Step

IMPORT_STEP = Step.STIGG_IMPORT
VERIFY_STEP = Step.STIGG_VERIFY


def entity_key(kind: str, record_key: str) -> str:
    return f"{kind}#{record_key}"


def split_entity_key(key: str) -> tuple[str, str]:
    kind, _, record_key = key.partition("#")
    return kind, record_key


def finished(
    import_id: str,
    kind: str,
    record_key: str,
    steps: dict[str, tuple[str, str | None, dict[str, str]]],
    now: datetime,
) -> SubjectProgress:
    """A record's progress item after bulk steps: each step -> (outcome, detail, vendor ids)."""
    records = {
        step: StepRecord(
            status=StepStatus.FAILED if outcome == "failed" else StepStatus.SUCCEEDED,
            attempts=1,
            vendor_ids=vendor_ids,
            started_at=now,
            finished_at=now,
            outcome=outcome,
            detail=detail,
        )
        for step, (outcome, detail, vendor_ids) in steps.items()
    }
    failed = any(r.status is StepStatus.FAILED for r in records.values())
    return SubjectProgress(
        run_id=import_id,
        subject=entity_key(kind, record_key),
        state=SubjectState.FAILED if failed else SubjectState.SUCCEEDED,
        current_step=list(steps)[-1],
        steps=records,
        enrolled_at=now,
        updated_at=now,
    )
