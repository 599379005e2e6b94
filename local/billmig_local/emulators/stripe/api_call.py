"""What a handler receives: the validated request, the path ids and the emulator's state and billing engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .state import StripeState

if TYPE_CHECKING:
    from .billing_engine import BillingEngine


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    path: dict[str, str]
    state: StripeState
    engine: BillingEngine
    url: str

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


Handler = Callable[[ApiCall], dict[str, Any]]


def as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def metadata_update(current: dict[str, str], given: Any) -> dict[str, str]:
    """Stripe metadata semantics: `""` clears all, a key set to `""` is removed, others merge."""
    if given is None:
        return current
    if given == "":
        return {}
    merged = dict(current)
    for key, value in given.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged
