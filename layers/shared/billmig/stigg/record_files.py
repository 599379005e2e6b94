"""Reading import files: every problem in a file is reported at once, naming the file, the record and the field.

Stigg's guide shows its file schemas with `//` comments and trailing commas, which JSON does not allow; a file
copied from there gets a message that says so, with the line and column, instead of a bare decoder error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from billmig.stigg.errors import InvalidImportFile
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord

MAX_PROBLEMS_IN_MESSAGE = 50


class RecordKind(StrEnum):
    CUSTOMERS = "customers"
    SUBSCRIPTIONS = "subscriptions"
    USAGE = "usage"

    @property
    def root_key(self) -> str:
        """The top-level key of the guide's file schema."""
        return "usages" if self is RecordKind.USAGE else self.value

    @property
    def model(self) -> type[CustomerRecord | SubscriptionRecord | UsageRecord]:
        if self is RecordKind.CUSTOMERS:
            return CustomerRecord
        if self is RecordKind.SUBSCRIPTIONS:
            return SubscriptionRecord
        return UsageRecord


@dataclass(frozen=True)
class FileProblem:
    file: str
    message: str
    index: int | None = None
    record_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.index is not None:
            where += f" record {self.index}" + (f" ({self.record_id})" if self.record_id else "")
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "index": self.index,
            "record_id": self.record_id,
            "field": self.field,
            "message": self.message,
        }


def problems_error(problems: Sequence[FileProblem]) -> InvalidImportFile:
    lines = [str(p) for p in problems[:MAX_PROBLEMS_IN_MESSAGE]]
    if len(problems) > MAX_PROBLEMS_IN_MESSAGE:
        lines.append(f"... and {len(problems) - MAX_PROBLEMS_IN_MESSAGE} more")
    return InvalidImportFile(f"{len(problems)} problem(s):\n" + "\n".join(lines), tuple(problems))


def json_extension_at(text: str) -> tuple[str, int, int] | None:
    """The first `//` or `/*` comment or trailing comma outside a string: (what, line, column), 1-based."""
    in_string = escaped = False
    last_comma: int | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string, last_comma = True, None
        elif char == "/" and text[i + 1 : i + 2] in ("/", "*"):
            return ("a comment", *_line_column(text, i))
        elif char == ",":
            last_comma = i
        elif char in "]}" and last_comma is not None:
            return ("a trailing comma", *_line_column(text, last_comma))
        elif not char.isspace():
            last_comma = None
        i += 1
    return None


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_json_document(text: str, *, file_name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        extension = json_extension_at(text)
        if extension is not None:
            what, line, column = extension
            message = (
                f"line {line}, column {column}: {what}. JSON allows no comments or trailing commas; Stigg's guide "
                "shows its schemas with both, so remove them from files copied from there"
            )
        else:
            message = f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        raise problems_error([FileProblem(file=file_name, message=message)]) from exc


def _record_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("customerId")
        if isinstance(value, str):
            extra = raw.get("planId") or raw.get("featureId")
            return f"{value}/{extra}" if isinstance(extra, str) else value
    return None


def load_records(kind: RecordKind, text: str, *, file_name: str) -> list[BaseModel]:
    """All records of one file, or `InvalidImportFile` listing every problem in it."""
    document = parse_json_document(text, file_name=file_name)
    if not isinstance(document, dict) or not isinstance(document.get(kind.root_key), list):
        raise problems_error(
            [FileProblem(file=file_name, message=f'expected an object {{"{kind.root_key}": [...]}} (Stigg\'s schema)')]
        )
    extra_keys = sorted(set(document) - {kind.root_key})
    problems: list[FileProblem] = [
        FileProblem(file=file_name, message=f"unexpected top-level key {key!r}") for key in extra_keys
    ]
    records: list[BaseModel] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(document[kind.root_key]):
        record_id = _record_id(raw)
        try:
            record = kind.model.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or None
                problems.append(
                    FileProblem(file=file_name, index=index, record_id=record_id, field=field, message=error["msg"])
                )
            continue
        key = record.key
        if key in seen:
            problems.append(
                FileProblem(
                    file=file_name,
                    index=index,
                    record_id=record_id,
                    message=f"duplicate of record {seen[key]} ({key})",
                )
            )
            continue
        seen[key] = index
        records.append(record)
    if problems:
        raise problems_error(problems)
    return records
