"""What a handler receives: the validated request and the emulator's state (store, engine, clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billmig_local.emulators.object_store import ObjectStore

from .billing_engine import BillingEngine
from .errors import UNIQUENESS_KEY_USED, ApiError


@dataclass
class ApiCall:
    body: Any
    query: dict[str, str]
    path: dict[str, str]
    store: ObjectStore
    engine: BillingEngine
    now: Callable[[], float]

    def field(self, name: str, default: Any = None) -> Any:
        if isinstance(self.body, dict):
            return self.body.get(name, default)
        return default

    def claim_uniqueness_key(self, scope: str, key: str | None, owner_id: str) -> None:
        """Reserve `key` for `owner_id` within `scope`; a reused key is a 409, as in Metronome."""
        if not key:
            return
        with self.store.lock:
            ref = f"{scope}:{key}"
            if self.store.get("uniqueness_key", ref) is not None:
                raise ApiError(409, UNIQUENESS_KEY_USED)
            self.store.put("uniqueness_key", ref, {"owner_id": owner_id})

    def check_uniqueness_key(self, scope: str, key: str | None) -> None:
        if key and self.store.get("uniqueness_key", f"{scope}:{key}") is not None:
            raise ApiError(409, UNIQUENESS_KEY_USED)


Handler = Callable[[ApiCall], Any]
