"""How values look on Metronome's wire: RFC 3339 UTC timestamps, UUID ids, JSON numbers from exact decimals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billmig_local.emulators.object_store import ObjectStore

from .errors import ApiError

# Deterministic ids: the n-th object of a kind gets the same UUID in every fresh world.
_ID_NAMESPACE = uuid.UUID("6f1d2c1e-5b0a-4c52-9d7e-4d6574726f6e")

USD_CENTS = {"id": "2714e483-4ff1-48e4-9e25-ac732e8f24f2", "name": "USD (cents)"}
"""Metronome's fixed id for the default fiat credit type."""

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
EARLIEST_CONTRACT_START = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
"""Emulator limit: statement periods are computed from the contract start, so ancient starts are refused."""


def new_id(store: ObjectStore, kind: str) -> str:
    """Next deterministic UUID for `kind`; the counter lives in the store so ids stay unique after a restart."""
    with store.lock:
        counter = store.get("counter", kind) or {"n": 0}
        counter = {"n": counter["n"] + 1}
        store.put("counter", kind, counter)
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{counter['n']}"))


def derived_id(*parts: str) -> str:
    """A stable id for something computed, such as the invoice of one statement period."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


def parse_time(text: Any, field: str = "timestamp") -> float:
    """RFC 3339 -> Unix seconds; a value without a zone is refused, as Metronome's schema does."""
    if not isinstance(text, str):
        raise ApiError(400, f"{field}: expected an RFC 3339 date-time string")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"{field}: {text!r} is not a valid RFC 3339 date-time") from exc
    if parsed.tzinfo is None:
        raise ApiError(400, f"{field}: {text!r} has no time zone")
    return parsed.timestamp()


def format_time(instant: float) -> str:
    """Unix seconds -> `2026-01-01T00:00:00.000Z` (Metronome's own rendering)."""
    moment = datetime.fromtimestamp(instant, UTC)
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_time(text: Any, field: str) -> str:
    return format_time(parse_time(text, field))


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def cents(value: Decimal) -> int:
    """Round an exact amount to whole cents, half up (money is always integer minor units)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def json_number(value: Decimal | int | float) -> int | float:
    """An exact quantity as the JSON number a client expects (integers stay integers)."""
    dec = value if isinstance(value, Decimal) else Decimal(str(value))
    return int(dec) if dec == dec.to_integral_value() else float(dec)


def public(obj: Any) -> Any:
    """Drop the emulator's private bookkeeping (keys starting with `_`) before an object goes on the wire."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def upper(value: Any) -> Any:
    """Metronome's schema also accepts lowercase enum spellings; store them the way the API returns them."""
    return value.upper() if isinstance(value, str) else value
