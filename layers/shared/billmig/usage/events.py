"""The one shape the company's usage events reach the router in.

    {"event_id": "evt-000123", "customer_id": "acct_000042", "event_name": "storage_gb",
     "timestamp": "2026-11-03T10:15:00Z", "properties": {"gb": 12.5, "region": "us-east"}}

`customer_id` is the company's own (internal) customer id: the Metronome ingest alias, and the Stripe customer's
metadata value the migration config names. `event_id` is unique per event for that customer; it is what makes the
vendors' ids deterministic, so a resend never counts twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from billmig.usage.errors import InvalidUsageEvent

PropertyValue = str | int | float | bool


class UsageEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=256)
    customer_id: str = Field(min_length=1, max_length=256)
    event_name: str = Field(min_length=1, max_length=100)
    timestamp: AwareDatetime
    properties: dict[str, PropertyValue] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def unix_seconds(self) -> int:
        return int(self.timestamp.timestamp())


def parse_event(data: Any, where: str) -> UsageEvent:
    """`where` names the record (`usage.jsonl:17`, `message 5f2c...`), for an error a person can act on."""
    try:
        return UsageEvent.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "<record>"
            problems.append(f"{key}: {error['msg']}")
        raise InvalidUsageEvent(f"{where}: " + "; ".join(problems)) from exc


def parse_json_event(text: str, where: str) -> UsageEvent:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidUsageEvent(f"{where}: not JSON (column {exc.colno}): {exc.msg}") from exc
    return parse_event(data, where)
