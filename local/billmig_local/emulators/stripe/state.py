"""What every handler works on: the persistent objects, their ids, the clocks, and the meter event index.

Objects on a test clock live at that clock's `frozen_time`; every other object lives at the world clock's time.
Keys starting with `_` are the emulator's own bookkeeping and never leave it.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from billmig_local.emulators.object_store import ObjectStore

from .errors import no_such

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

KIND_BY_PREFIX = {
    "cus": "customer",
    "pm": "payment_method",
    "prod": "product",
    "price": "price",
    "mtr": "billing.meter",
    "sub": "subscription",
    "si": "subscription_item",
    "in": "invoice",
    "ii": "invoiceitem",
    "credgr": "billing.credit_grant",
    "cbtxn": "billing.credit_balance_transaction",
    "clock": "test_helpers.test_clock",
}
NAMES = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "product": "product",
    "price": "price",
    "billing.meter": "billing meter",
    "subscription": "subscription",
    "subscription_item": "subscription item",
    "subscription_schedule": "subscription schedule",
    "invoice": "invoice",
    "invoiceitem": "invoice item",
    "billing.credit_grant": "credit grant",
    "billing.credit_balance_transaction": "credit balance transaction",
    "test_helpers.test_clock": "test clock",
}


OWNER_KEY = {
    "customer": "test_clock",
    "subscription": "customer",
    "billing.credit_grant": "customer",
    "billing.credit_balance_transaction": "credit_grant",
    "invoice": "customer",
}


def public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


@dataclass(order=True)
class MeteredValue:
    timestamp: int
    seq: int
    value: float = field(compare=False)


class StripeState:
    def __init__(self, store: ObjectStore, world_now: Callable[[], float]) -> None:
        self.store = store
        self.world_now = world_now
        self.lock = threading.RLock()  # one writer at a time: billing reads and writes many objects together
        # (event_name, customer id) -> values by time; rebuilt from the stored events on start
        self.usage: dict[tuple[str, str], list[MeteredValue]] = {}
        self.identifiers: set[str] = set()
        self.stream_rejections = 0  # v2 stream events dropped after the request was accepted
        # (kind, owner id) -> ids of that kind it owns, in creation order: what billing reads per customer
        self.owned: dict[tuple[str, str], list[str]] = {}
        for event in store.all("billing.meter_event"):
            self._index(event)
        for kind in OWNER_KEY:
            for obj in store.all(kind):
                self._own(obj)

    # -- ids: short, Stripe-looking, deterministic per fresh world
    def new_id(self, prefix: str) -> str:
        with self.store.lock:
            counter = self.store.get("sequence", prefix) or {"n": 0}
            n = counter["n"] + 1
            self.store.put("sequence", prefix, {"n": n})
        digits = ""
        while n:
            n, r = divmod(n, 62)
            digits = _ALPHABET[r] + digits
        return f"{prefix}_Emu{digits.rjust(11, '0')}"

    # -- objects
    def get(self, kind: str, oid: Any, param: str = "id") -> dict[str, Any]:
        found = self.store.get(kind, oid) if isinstance(oid, str) else None
        if found is None:
            raise no_such(NAMES.get(kind, kind), str(oid), param)
        return found

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["object"] in OWNER_KEY and self.store.get(obj["object"], obj["id"]) is None:
            self._own(obj)
        return self.store.put(obj["object"], obj["id"], obj)

    def _own(self, obj: dict[str, Any]) -> None:
        owner = obj.get(OWNER_KEY[obj["object"]])
        if owner:
            self.owned.setdefault((obj["object"], owner), []).append(obj["id"])

    def owned_by(self, kind: str, owner: str) -> list[dict[str, Any]]:
        """Objects of `kind` whose owner (see `OWNER_KEY`) is `owner`, oldest first."""
        found = (self.store.get(kind, oid) for oid in self.owned.get((kind, owner), []))
        return [obj for obj in found if obj is not None]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return self.store.all(kind)

    # -- clocks
    def now_for_clock(self, clock_id: str | None) -> int:
        if clock_id:
            clock = self.store.get("test_helpers.test_clock", clock_id)
            if clock is not None:
                return int(clock["frozen_time"])
        return int(self.world_now())

    def now_for(self, customer_id: str | None) -> int:
        customer = self.store.get("customer", customer_id) if customer_id else None
        return self.now_for_clock(customer.get("test_clock") if customer else None)

    # -- meter events
    def record_event(self, event: dict[str, Any]) -> None:
        self.store.put("billing.meter_event", event["identifier"], event)
        self._index(event)

    def _index(self, event: dict[str, Any]) -> None:
        self.identifiers.add(event["identifier"])
        key = (event["event_name"], event["_customer"])
        insort(self.usage.setdefault(key, []), MeteredValue(event["timestamp"], event["_seq"], event["_value"]))

    def values(self, event_name: str, customer_id: str, start: int, end: int) -> list[MeteredValue]:
        return [v for v in self.usage.get((event_name, customer_id), []) if start <= v.timestamp < end]
