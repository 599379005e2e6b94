"""The migration's feature flags: one JSON SSM parameter (declared in template.yaml) the functions read through a
short cache. `stripe_usage_writes_off` lists the batches whose dual-write path is decommissioned (their clean-up
ran): the usage router sends their customers' events to Metronome only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

STRIPE_USAGE_WRITES_OFF = "stripe_usage_writes_off"


class FeatureFlags(Protocol):
    def read(self) -> dict[str, Any]: ...

    def write(self, flags: dict[str, Any]) -> None: ...


def stripe_writes_off(flags: dict[str, Any]) -> dict[str, str]:
    """Batch id -> when its Stripe usage writes were turned off."""
    return dict(flags.get(STRIPE_USAGE_WRITES_OFF) or {})


def turn_stripe_writes_off(store: FeatureFlags, batch_id: str, at: datetime) -> bool:
    """Flip the batch's flag; False when it was already off. Read-modify-write: clean-ups of two batches at once
    could race, so the write is read back and redone until it holds."""
    for _ in range(5):
        flags = store.read()
        if batch_id in stripe_writes_off(flags):
            return False
        store.write({**flags, STRIPE_USAGE_WRITES_OFF: {**stripe_writes_off(flags), batch_id: at.isoformat()}})
        if batch_id in stripe_writes_off(store.read()):
            return True
    raise RuntimeError(f"feature flags: the flag of {batch_id} did not hold after 5 writes")


def parse_flags(text: str, where: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"{where}: the feature flags must be a JSON object")
    return value
