"""Stigg's documented limits: items per call and requests per minute, counted on the emulator's (world) clock.

Defaults are the published figures (docs.stigg.io .../rest/rate-limits; "both limits apply"); each can be changed at
run time through `POST /_emulator/stigg/limits` or `Limits.configure`, so tests reach a limit without sleeping and
without sending hundreds of requests.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import BAD_USER_INPUT, RATE_LIMIT_EXCEEDED, StiggError

WINDOW_SECONDS = 60.0


@dataclass
class LimitValues:
    import_customers_per_call: int = 1000
    import_subscriptions_per_call: int = 1000
    usages_per_call: int = 100
    import_customers_per_minute: int = 250
    import_subscriptions_per_minute: int = 250  # Stigg publishes none; 250/min like the other import route
    report_usage_per_minute: int = 600
    provision_per_minute: int = 250
    provision_per_minute_per_customer: int = 30
    list_subscriptions_per_minute: int = 1500  # the `subscriptions` query (docs .../graphql/rate-limits)
    list_customers_per_minute: int = 1500  # `customers`: none published; like `subscriptions`
    list_page_size_max: int = 50  # `paging.first`/`last`: none documented; nestjs-query's default maxResultsSize
    subscription_import_delay_seconds: int = 0  # not a limit: how long (world clock) an import task stays pending


class Limits:
    def __init__(self) -> None:
        self.values = LimitValues()
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def configure(self, changes: dict[str, Any]) -> dict[str, int]:
        known = {f.name for f in fields(LimitValues)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(known)}")
        for name, value in changes.items():
            setattr(self.values, name, int(value))
        return self.as_dict()

    def reset(self) -> None:
        with self._lock:
            self.values = LimitValues()
            self._hits.clear()

    def as_dict(self) -> dict[str, int]:
        return asdict(self.values)

    def check_size(self, what: str, count: int, maximum: int) -> None:
        if count < 1 or count > maximum:
            raise StiggError(BAD_USER_INPUT, f"{what} must contain between 1 and {maximum} items (got {count})")

    def take(self, key: str, per_minute: int, now: float, what: str) -> None:
        """Count one request under `key` in a sliding minute; over the limit -> RateLimitExceeded (HTTP 429)."""
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= per_minute:
                raise StiggError(
                    RATE_LIMIT_EXCEEDED, f"Too many requests: {what} is limited to {per_minute} per minute"
                )
            hits.append(now)
