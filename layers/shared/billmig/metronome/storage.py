"""Where a Metronome batch's documents live in S3 (the run's resolved config, its customers, each snapshot).

The state machine passes these keys, never the documents, so a batch of any size stays under Step Functions' 256 KB.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from billmig.metronome.resolution import ResolvedConfig
from billmig.stigg.import_storage import ImportStorage as RunStorage

__all__ = ["MigrationRun", "RunStorage", "customers_key", "run_key", "snapshot_key"]


class MigrationRun(BaseModel):
    """One batch's run: the config every step reads, and the customers left out with the reason."""

    batch_id: str
    config: ResolvedConfig
    excluded: dict[str, str] = Field(default_factory=dict)


def _prefix(batch_id: str) -> str:
    return f"metronome/{batch_id}/"


def run_key(batch_id: str) -> str:
    return f"{_prefix(batch_id)}run.json"


def customers_key(batch_id: str) -> str:
    """The distributed Map's item list: `[{"stripe_customer_id": ...}]`."""
    return f"{_prefix(batch_id)}customers.json"


def snapshot_key(batch_id: str, customer_id: str) -> str:
    return f"{_prefix(batch_id)}snapshots/{customer_id}.json"
