"""`MetronomeIngestSink` on the official SDK: `POST /v1/ingest`, 100 events per call, deduped on `transaction_id`.

Metronome refuses a call as a whole when one event in it is invalid; the call is then halved until the refused
events stand alone (`bulk.send_isolating`), which is safe because a resent `transaction_id` is ignored. 429/5xx are
retried by the SDK (safe for the same reason) and, if they persist, left to SQS.

The call goes through the SDK client's own `post` (its auth, retries and typed errors) with the body already in the
wire shape: `v1.usage.ingest` first walks every event against its TypedDict (`maybe_transform`), which for these
fields (no aliases, no dates) returns them as they are, and that walk was a quarter of the router's CPU.
"""

from __future__ import annotations

from types import NoneType
from typing import Any

from metronome import Metronome
from metronome.types.v1 import usage_ingest_params

from billmig.adapters.metronome_sdk import typed_metronome_call
from billmig.bulk import chunked, send_isolating
from billmig.errors import TransientError
from billmig.usage.ports import MetronomeEvent, Refusal

INGEST_BATCH = 100  # Metronome: 1-100 events per ingest call
_INGEST_OPTIONS: Any = {"headers": {"Accept": "*/*"}}  # as `v1.usage.ingest` sends it


class MetronomeIngestSink:
    def __init__(self, client: Metronome) -> None:
        self._client = client

    @classmethod
    def connect(cls, bearer_token: str, base_url: str | None = None) -> MetronomeIngestSink:
        return cls(Metronome(bearer_token=bearer_token, base_url=base_url or None, max_retries=2))

    def ingest(self, events: list[MetronomeEvent]) -> dict[int, Refusal]:
        refused: dict[int, Refusal] = {}
        for offset, part in _offsets(events):
            try:
                _, rejected = send_isolating(part, self._call)
            except TransientError as exc:
                refused.update(dict.fromkeys(range(offset, offset + len(part)), Refusal(str(exc), True)))
                continue
            refused.update({offset + i: Refusal(reason, False) for i, reason in rejected.items()})
        return refused

    def _call(self, part: list[MetronomeEvent]) -> list[None]:
        body: list[usage_ingest_params.Usage] = [
            {
                "transaction_id": e.transaction_id,
                "customer_id": e.customer_id,
                "event_type": e.event_type,
                "timestamp": e.timestamp,
                "properties": e.properties,
            }
            for e in part
        ]
        typed_metronome_call(
            f"ingest {len(part)} events",
            lambda: self._client.post("/v1/ingest", body=body, options=_INGEST_OPTIONS, cast_to=NoneType),
        )
        return [None]


def _offsets(events: list[MetronomeEvent]) -> list[tuple[int, list[MetronomeEvent]]]:
    return [(i * INGEST_BATCH, part) for i, part in enumerate(chunked(events, INGEST_BATCH))]
