"""The Stigg pacer on the progress table: one item per limit, shared by every Task of every import.

An item holds the limit's send instants of the last minute (milliseconds, on the world clock) and a cool-down; a
Task takes a slot by writing the item back with an optimistic `version`, so of two Tasks racing for the same slot
exactly one wins and the other computes the next one. Slots are handed out in order and the Task waits for its own,
inside the invocation (at most `max_wait` seconds; longer, and it raises `StiggPaced` for Step Functions to retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import ProgressStoreUnavailable
from billmig.stigg.errors import StiggPaced
from billmig.stigg.pacing import Limit
from billmig.world_clock import Clock, WorldClock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PACING_RUN = "stigg-pacing"
WINDOW_SECONDS = 60.0
MARGIN_SECONDS = 2.0  # Stigg's clock and the request's flight time: a minute here is a little longer than Stigg's
COOL_DOWN_FIRST = 1.0
COOL_DOWN_MAX = 30.0
_LOST_RACE_CODES = ("ConditionalCheckFailedException", "TransactionCanceledException")


@dataclass
class _LimitState:
    limit: Limit
    version: int | None = None  # None: no item yet
    sent: list[float] = field(default_factory=list)
    cool_down_until: float = 0.0
    throttles: int = 0
    last_throttle: float = 0.0

    def next_slot(self, now: float) -> float:
        window = WINDOW_SECONDS + MARGIN_SECONDS
        self.sent = [t for t in self.sent if t > now - window]
        slot = max(now, self.cool_down_until, self.sent[-1] if self.sent else now)
        if len(self.sent) >= self.limit.per_minute:
            slot = max(slot, self.sent[-self.limit.per_minute] + window)
        return slot


class DynamoDBPacer:
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock | None = None,
        max_wait: float = 40.0,
        max_races: int = 50,
    ) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._clock: Clock = clock or WorldClock()
        self._max_wait = max_wait
        self._max_races = max_races

    def acquire(self, limits: Sequence[Limit]) -> None:
        if not limits:
            return
        for _ in range(self._max_races):
            now = self._clock.now()
            states = [self._read(limit) for limit in limits]
            slot = max(state.next_slot(now) for state in states)
            if slot - now > self._max_wait:
                self._clock.sleep_until(now + self._max_wait)
                names = ", ".join(limit.name for limit in limits)
                raise StiggPaced(f"Stigg limits {names}: next free slot {slot - now:.0f} s away")
            for state in states:
                state.sent.append(slot)
            if self._write(states):
                self._clock.sleep_until(slot)
                return
        raise StiggPaced(f"Stigg pacing: lost {self._max_races} races for a slot in a row")

    def throttled(self, limits: Sequence[Limit]) -> None:
        for limit in limits:
            for _ in range(self._max_races):
                now = self._clock.now()
                state = self._read(limit)
                state.throttles = state.throttles + 1 if state.last_throttle > now - WINDOW_SECONDS else 1
                state.last_throttle = now
                pause = min(COOL_DOWN_MAX, COOL_DOWN_FIRST * 2 ** (state.throttles - 1))
                state.cool_down_until = max(state.cool_down_until, now + pause)
                if self._write([state]):
                    break

    # -- machinery
    def _key(self, limit: Limit) -> dict[str, Any]:
        return {"run_id": {"S": PACING_RUN}, "subject": {"S": f"limit#{limit.name}"}}

    def _read(self, limit: Limit) -> _LimitState:
        try:
            item = self._client.get_item(TableName=self.table_name, Key=self._key(limit), ConsistentRead=True).get(
                "Item"
            )
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"pacing {limit.name} on {self.table_name}: {exc}") from exc
        if not item:
            return _LimitState(limit)
        sent_text = item.get("sent", {}).get("S", "")
        return _LimitState(
            limit,
            version=int(item["version"]["N"]),
            sent=[int(t) / 1000 for t in sent_text.split(",") if t],
            cool_down_until=float(item.get("cool_down_until", {}).get("N", "0")),
            throttles=int(item.get("throttles", {}).get("N", "0")),
            last_throttle=float(item.get("last_throttle", {}).get("N", "0")),
        )

    def _item(self, state: _LimitState) -> dict[str, Any]:
        return {
            **self._key(state.limit),
            "version": {"N": str((state.version or 0) + 1)},
            "per_minute": {"N": str(state.limit.per_minute)},
            "sent": {"S": ",".join(str(round(t * 1000)) for t in state.sent)},
            "cool_down_until": {"N": f"{state.cool_down_until:.3f}"},
            "throttles": {"N": str(state.throttles)},
            "last_throttle": {"N": f"{state.last_throttle:.3f}"},
        }

    def _condition(self, state: _LimitState) -> dict[str, Any]:
        if state.version is None:
            return {"ConditionExpression": "attribute_not_exists(run_id)"}
        return {
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": {":expected": {"N": str(state.version)}},
        }

    def _write(self, states: list[_LimitState]) -> bool:
        """Write every state back at once; False when another Task changed one of them first."""
        try:
            if len(states) == 1:
                self._client.put_item(
                    TableName=self.table_name, Item=self._item(states[0]), **self._condition(states[0])
                )
            else:
                puts: list[Any] = [
                    {"Put": {"TableName": self.table_name, "Item": self._item(s), **self._condition(s)}} for s in states
                ]
                self._client.transact_write_items(TransactItems=puts)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _LOST_RACE_CODES:
                return False
            raise ProgressStoreUnavailable(f"pacing on {self.table_name}: {exc}") from exc
        except BotoCoreError as exc:
            raise ProgressStoreUnavailable(f"pacing on {self.table_name}: {exc}") from exc
        return True
