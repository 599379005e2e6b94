"""What the router sends, and the small ports it sends through (adapters in `billmig.adapters`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class StripeMeterEvent:
    identifier: str
    event_name: str
    timestamp: int  # Unix seconds
    payload: dict[str, str]


@dataclass(frozen=True)
class MetronomeEvent:
    transaction_id: str
    customer_id: str  # the ingest alias: Metronome resolves it
    event_type: str
    timestamp: str  # RFC 3339
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """Why a vendor did not take an event: `transient` ones are retried by SQS, the others are dead-lettered."""

    reason: str
    transient: bool


class StripeMeterSink(Protocol):
    def send(self, events: list[StripeMeterEvent]) -> dict[int, Refusal]:
        """Send every event (in the vendor's batch sizes); the refused ones by index. Never raises for one event."""
        ...


class MetronomeIngestSink(Protocol):
    def ingest(self, events: list[MetronomeEvent]) -> dict[int, Refusal]: ...


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    reason: str


class DeadLetterSink(Protocol):
    def dead_letter(self, letters: list[DeadLetter]) -> set[str]:
        """Write each letter with its reason; returns the message ids that could not be written (retry them)."""
        ...


# Every write a resend makes, by port and method (`billmig.usage.resend`): the crash tests stop right after each.
WRITE_METHODS = (
    ("StripeMeterSink", "send"),
    ("MetronomeIngestSink", "ingest"),
    ("UsageJournal", "record"),
    ("DeadLetterSink", "dead_letter"),
)
