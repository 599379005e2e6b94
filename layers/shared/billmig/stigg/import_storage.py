"""Where an import's files live while it runs (S3 on AWS and locally), and how its objects are named.

State machines pass object keys, never records, so a batch of any size stays under Step Functions' 256 KB payload.
"""

from __future__ import annotations

from typing import Any, Protocol


class ImportStorage(Protocol):
    def read_text(self, key: str) -> str: ...

    def write_text(self, key: str, text: str, content_type: str = "application/json") -> None: ...

    def read_json(self, key: str) -> Any: ...

    def write_json(self, key: str, document: Any) -> None: ...


def import_prefix(import_id: str) -> str:
    return f"imports/{import_id}/"


def input_key(import_id: str, kind: str, index: int, file_name: str) -> str:
    return f"{import_prefix(import_id)}input/{kind}/{index:03d}-{file_name}"


def chunk_key(import_id: str, kind: str, index: int) -> str:
    return f"{import_prefix(import_id)}chunks/{kind}-{index:05d}.json"


def manifest_key(import_id: str) -> str:
    """The bulk chunks of an import by kind (`customer`, `subscription`, `usage`): what the report goes through."""
    return f"{import_prefix(import_id)}chunks/manifest.json"


def report_keys(import_id: str) -> tuple[str, str]:
    prefix = import_prefix(import_id)
    return f"{prefix}report.json", f"{prefix}report.csv"
