"""What a chunk Task has done so far, so a retried Task continues instead of starting over.

One item per chunk (not per record: an import of 5,000 customers is 20 items, not 20,000): what Stigg held before the
first send (so created and updated stay apart after any number of retries), the subscription import tasks started,
and every record's outcome the moment it is known. A record of a chunk that finally failed has no outcome here; the
report counts it failed with the chunk's caught error.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

DETAIL_MAX = 300  # an item must stay under DynamoDB's 400 KB with a thousand failed records


class RecordOutcome(BaseModel):
    outcome: str  # created, updated, skipped, failed
    detail: str | None = None
    stigg_id: str | None = None


class ChunkProgress(BaseModel):
    import_id: str
    chunk_key: str
    kind: str  # customer, subscription, usage
    records: int = 0
    surveyed: bool = False  # `existed` and `updated_at_before` were read before the first send
    existed: list[str] = Field(default_factory=list)
    updated_at_before: dict[str, str] = Field(default_factory=dict)
    tasks: dict[str, list[str]] = Field(default_factory=dict)  # subscription import task id -> its record keys
    outcomes: dict[str, RecordOutcome] = Field(default_factory=dict)
    version: int = 0

    def record(self, key: str, outcome: str, detail: str | None = None, stigg_id: str | None = None) -> None:
        if detail is not None and len(detail) > DETAIL_MAX:
            detail = detail[: DETAIL_MAX - 1] + "…"
        self.outcomes[key] = RecordOutcome(outcome=outcome, detail=detail, stigg_id=stigg_id)


class ChunkProgressStore(Protocol):
    def load_chunk(self, import_id: str, chunk_key: str) -> ChunkProgress | None: ...

    def save_chunk(self, progress: ChunkProgress) -> None:
        """Write if nobody else wrote since `progress` was loaded (bumps `version`); else `StepClaimedElsewhere`."""
        ...

    def chunks_of(self, import_id: str) -> list[ChunkProgress]: ...

    def records_done(self, import_id: str) -> int:
        """How many records have an outcome, over every chunk: what a progress bar shows."""
        ...
