"""One emulated Stigg environment: its persistent records, its clock, its limits and its request counters."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from billmig_local.emulators.object_store import ObjectStore

from .limits import Limits

ENVIRONMENT_KIND = "environment"


@dataclass
class Environment:
    """Everything a resolver needs; one lock serialises executions, which keeps every multi-record write atomic."""

    store: ObjectStore
    now: Callable[[], float]
    limits: Limits
    api_key: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    resolver_calls: int = 0  # every field resolution that ran (proves invalid documents run none)
    environment_id: str = ""
    subscriptions_by_customer: dict[str, list[str]] = field(default_factory=dict)  # ids, oldest first

    def __post_init__(self) -> None:
        existing = self.store.get(ENVIRONMENT_KIND, "current")
        if existing is None:
            existing = self.store.put(ENVIRONMENT_KIND, "current", {"id": str(uuid.uuid4())})
        self.environment_id = existing["id"]
        for subscription in self.store.all("subscription"):
            self.subscriptions_by_customer.setdefault(subscription["customerId"], []).append(
                subscription["subscriptionId"]
            )

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def get(self, kind: str, oid: str | None) -> dict[str, Any] | None:
        return None if oid is None else self.store.get(kind, oid)
