"""Where a Metronome batch's documents live in S3 (the run's resolved config, its customers, each snapshot).

The state machine passes these keys, never the documents, so a batch of any size stays under Step Functions' 256 KB.
"""

from __future__ import annotations

import hashlib
import threading

from pydantic import BaseModel, Field

from billmig.metronome.resolution import ResolvedConfig
from billmig.stigg.import_storage import ImportStorage as RunStorage

__all__ = [
    "MigrationRun",
    "RunStorage",
    "customers_key",
    "read_run",
    "run_key",
    "run_version_key",
    "snapshot_key",
]


class MigrationRun(BaseModel):
    """One batch's run: the config every step reads, and the customers left out with the reason."""

    batch_id: str
    config: ResolvedConfig
    excluded: dict[str, str] = Field(default_factory=dict)


def _prefix(batch_id: str) -> str:
    return f"metronome/{batch_id}/"


def run_key(batch_id: str) -> str:
    return f"{_prefix(batch_id)}run.json"


def run_version_key(batch_id: str, document: bytes) -> str:
    """Where one version of the run document lives, named by its content: what an execution passes its steps.
    `run_key` keeps the latest for the commands that look a batch up; this key never changes what it holds."""
    return f"{_prefix(batch_id)}runs/{hashlib.sha256(document).hexdigest()[:32]}.json"


_RUN_VERSIONS: dict[str, MigrationRun] = {}
_RUN_VERSIONS_LIMIT = 16
_run_versions_lock = threading.Lock()


def read_run(storage: RunStorage, key: str) -> MigrationRun:
    """The run document at `key`. A version key names its content, so a warm container reads and validates each
    version once, not in every step of every customer (five S3 reads and five validations per customer)."""
    if "/runs/" not in key:
        return MigrationRun.model_validate(storage.read_json(key))
    with _run_versions_lock:
        known = _RUN_VERSIONS.get(key)
    if known is not None:
        return known
    run = MigrationRun.model_validate(storage.read_json(key))
    with _run_versions_lock:
        if len(_RUN_VERSIONS) >= _RUN_VERSIONS_LIMIT:
            _RUN_VERSIONS.clear()
        _RUN_VERSIONS[key] = run
    return run


def customers_key(batch_id: str) -> str:
    """The distributed Map's item list: `[{"stripe_customer_id": ...}]`."""
    return f"{_prefix(batch_id)}customers.json"


def snapshot_key(batch_id: str, customer_id: str) -> str:
    return f"{_prefix(batch_id)}snapshots/{customer_id}.json"
