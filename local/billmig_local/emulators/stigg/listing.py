"""Stigg's paged list queries (`customers`, `subscriptions`, `importIntegrationTasks`) as its schema defines them.

Stigg's schema is nestjs-query's (`CursorPaging`, `ConnectionCursor`, `*FieldComparison`, `paging = {first: 10}`,
`sorting = [{direction: DESC, field: createdAt}]`), so the list arguments behave as nestjs-query's do:
- `filter`: per field a comparison (eq, neq, gt, gte, lt, lte, in, notIn, is, isNot, like, notLike, iLike, notILike,
  between, notBetween), combined by `and`/`or`; a relation filter (a subscription's `customer`, `plan`, `resource`, a
  customer's `subscriptions`) matches when a related record matches. A field the emulator keeps no value for answers
  `UnsupportedParameter` rather than being ignored, so a caller never reads an unfiltered list by mistake.
- `sorting`: by the listed fields in order (nulls last ascending, first descending, as Postgres); ties by record.
- `paging`: `first`/`after` or `last`/`before` over offset cursors (base64 `arrayconnection:<n>`, nestjs-query's
  offset pager). `first`/`last` above `list_page_size_max` answer `BadUserInput` with nestjs-query's message before
  any record is read. Stigg documents no GraphQL page size; 50 is nestjs-query's default `maxResultsSize` (Stigg's
  REST lists take 1-100), and `POST /_emulator/stigg/limits` changes it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import datetimes
from .errors import BAD_USER_INPUT, StiggError

Record = dict[str, Any]
UNSUPPORTED = "UnsupportedParameter"
DEFAULT_PAGE_SIZE = 10  # the schema's `paging = {first: 10}`, also when `paging` is given without a size
_CURSOR_PREFIX = "arrayconnection:"


@dataclass(frozen=True)
class Field:
    """One filterable (and sortable) field: how to read it from a stored record; dates compare as instants."""

    read: Callable[[Record], Any]
    date: bool = False


@dataclass(frozen=True)
class Relation:
    """A relation filter: the related records of a record, and the fields they are filtered on."""

    related: Callable[[Record], Iterable[Record]]
    fields: dict[str, Field | Relation] = field(default_factory=dict)


Fields = dict[str, Field | Relation]


def key(name: str) -> Field:
    return Field(lambda r: r.get(name))


def date_key(name: str) -> Field:
    return Field(lambda r: r.get(name), date=True)


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """SQL LIKE: `%` any run, `_` one character, everything else literal."""
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), flags | re.DOTALL)


def _compare(value: Any, comparison: dict[str, Any], date: bool, where: str) -> bool:
    def operand(raw: Any) -> Any:
        return datetimes.parse(raw, where) if date and raw is not None else raw

    for op, raw in comparison.items():
        if op in ("is", "isNot"):
            held = value is raw if raw is not None else value is None
            ok = held if op == "is" else not held
        elif op in ("between", "notBetween"):
            lower, upper = operand(raw["lower"]), operand(raw["upper"])
            inside = value is not None and lower <= value <= upper
            ok = inside if op == "between" else not inside
        elif op in ("in", "notIn"):
            inside = value in [operand(v) for v in raw]
            ok = inside if op == "in" else not inside
        elif op in ("like", "notLike", "iLike", "notILike"):
            flags = re.IGNORECASE if op.lower().endswith("ilike") else 0
            hit = isinstance(value, str) and _like(str(raw), flags).fullmatch(value) is not None
            ok = hit if op in ("like", "iLike") else not hit
        elif op == "eq":
            ok = value == operand(raw)
        elif op == "neq":
            ok = value != operand(raw)
        else:  # gt, gte, lt, lte: a null never compares
            target = operand(raw)
            if value is None or target is None:
                ok = False
            else:
                ok = {"gt": value > target, "gte": value >= target, "lt": value < target, "lte": value <= target}[op]
        if not ok:
            return False
    return True


def matches(record: Record, filter_: dict[str, Any] | None, fields: Fields, where: str) -> bool:
    for name, condition in (filter_ or {}).items():
        if condition is None:
            continue
        if name == "and":
            if not all(matches(record, f, fields, where) for f in condition):
                return False
            continue
        if name == "or":
            if condition and not any(matches(record, f, fields, where) for f in condition):
                return False
            continue
        spec = fields.get(name)
        if spec is None:
            raise StiggError(UNSUPPORTED, f"{where}: filtering on {name!r} is not implemented by the Stigg emulator")
        if isinstance(spec, Relation):
            if not any(matches(r, condition, spec.fields, f"{where}.{name}") for r in spec.related(record)):
                return False
        elif not _compare(spec.read(record), condition, spec.date, f"{where}.{name}"):
            return False
    return True


def sort(records: list[Record], sorting: list[dict[str, Any]] | None, fields: Fields, where: str) -> list[Record]:
    tie_break = fields["id"]
    assert isinstance(tie_break, Field)
    ordered = sorted(records, key=lambda r: str(tie_break.read(r)))  # a stable order from page to page
    for rule in reversed(sorting or []):
        spec = fields.get(rule["field"])
        if not isinstance(spec, Field):
            raise StiggError(UNSUPPORTED, f"{where}: sorting by {rule['field']!r} is not implemented by the emulator")
        descending = rule["direction"] == "DESC"
        nulls_first = rule.get("nulls") == "NULLS_FIRST" if rule.get("nulls") else descending
        present = [r for r in ordered if spec.read(r) is not None]
        absent = [r for r in ordered if spec.read(r) is None]
        present.sort(key=spec.read, reverse=descending)
        ordered = absent + present if nulls_first else present + absent
    return ordered


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def _decode_cursor(cursor: str, name: str) -> int:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        if text.startswith(_CURSOR_PREFIX):
            return int(text[len(_CURSOR_PREFIX) :])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise StiggError(BAD_USER_INPUT, f"paging.{name}: invalid cursor {cursor!r}")


def check_paging(paging: dict[str, Any] | None, maximum: int) -> None:
    """The argument checks nestjs-query runs before resolving: page sizes within `maximum`, not negative."""
    for name in ("first", "last"):
        size = (paging or {}).get(name)
        if size is not None and size > maximum:
            raise StiggError(BAD_USER_INPUT, f"Field paging.{name} max allowed value is `{maximum}`.")
        if size is not None and size < 0:
            raise StiggError(BAD_USER_INPUT, f"Field paging.{name} must not be negative.")
    if (paging or {}).get("first") is not None and (paging or {}).get("last") is not None:
        raise StiggError(BAD_USER_INPUT, "paging: set either first or last, not both")


def connection(
    records: list[Record], paging: dict[str, Any] | None, shape: Callable[[Record], Record], *, total_count: bool
) -> Record:
    """One page of `records` (already filtered and sorted) as a connection; `shape` renders only this page."""
    paging = paging or {}
    total = len(records)
    if paging.get("last") is not None or paging.get("before"):
        end = _decode_cursor(paging["before"], "before") if paging.get("before") else total
        end = max(0, min(end, total))
        size: int = paging["last"] if paging.get("last") is not None else DEFAULT_PAGE_SIZE
        start = max(0, end - size)
    else:
        start = _decode_cursor(paging["after"], "after") + 1 if paging.get("after") else 0
        start = max(0, min(start, total))
        size = paging["first"] if paging.get("first") is not None else DEFAULT_PAGE_SIZE
        end = min(total, start + size)
    edges = [{"cursor": encode_cursor(i), "node": shape(records[i])} for i in range(start, end)]
    result: Record = {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < total,
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }
    if total_count:
        result["totalCount"] = total
    return result


def ids_wanted(filter_: dict[str, Any] | None, name: str) -> list[str] | None:
    """The ids a filter names with `eq`/`in` at its top level (they narrow what must be read), else None."""
    comparison = (filter_ or {}).get(name) or {}
    if comparison.get("eq") is not None:
        return [comparison["eq"]]
    if comparison.get("in") is not None:
        return list(dict.fromkeys(comparison["in"]))
    return None
