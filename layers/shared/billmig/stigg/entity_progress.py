"""How import subjects are keyed in the progress store: `<kind>#<key>` (`paid#<record>`, `chunk#<chunk key>`).

Bulk records are tracked per chunk (`billmig.stigg.chunk_progress`); paid plans, one step at a time, per record.
"""

from __future__ import annotations


def entity_key(kind: str, record_key: str) -> str:
    return f"{kind}#{record_key}"


def split_entity_key(key: str) -> tuple[str, str]:
    kind, _, record_key = key.partition("#")
    return kind, record_key
