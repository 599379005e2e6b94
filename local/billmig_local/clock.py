"""The local world's clock: real time plus an offset that only ever moves forward.

Everything local (Step Functions `Wait`, the schedule runner, the emulators' billing engines) reads this one clock,
so `billmig local clock advance 31d` moves the whole world in step. Time keeps flowing between moves, like real
time; billing state depends on it never going backwards, so moving it back is refused.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

Listener = Callable[[float, float], None]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ClockMovedBackwards(ValueError):
    """Raised when asked to set the clock earlier than it is now."""


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `36h`, `31d`, `2w` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 36h, 31d, 2w)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_instant(text: str) -> float:
    """An RFC 3339 timestamp (naive means UTC) or Unix seconds -> Unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def to_rfc3339(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


class WorldClock:
    """Thread-safe; persists its offset in `state_file` so a restart keeps the world's time."""

    def __init__(self, state_file: Path | None = None, *, start_at: float | None = None) -> None:
        self._lock = threading.RLock()
        self._offset = 0.0
        self._state_file = state_file
        self._listeners: list[Listener] = []
        self._moved = threading.Condition(self._lock)
        if state_file is not None and state_file.exists():
            self._offset = float(json.loads(state_file.read_text())["offset_seconds"])
        if start_at is not None and start_at > self.now():
            self._offset = start_at - time.time()
            self._persist()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def now_int(self) -> int:
        return int(self.now())

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ClockMovedBackwards(f"cannot advance by a negative duration ({seconds} s)")
        with self._lock:
            old = self.now()
            self._offset += seconds
            new = self.now()
            self._persist()
            self._moved.notify_all()
        self._notify(old, new)
        return new

    def set(self, instant: float) -> float:
        with self._lock:
            old = self.now()
            if instant < old - 1e-3:
                raise ClockMovedBackwards(
                    f"the local world is at {to_rfc3339(old)}; it cannot go back to {to_rfc3339(instant)}"
                )
            self._offset += max(0.0, instant - old)
            new = self.now()
            self._persist()
            self._moved.notify_all()
        self._notify(old, new)
        return new

    def subscribe(self, listener: Listener) -> None:
        """`listener(old, new)` runs in the mover's thread after every set/advance."""
        with self._lock:
            self._listeners.append(listener)

    def wait_until(self, instant: float, *, poll_seconds: float = 0.5, stop: threading.Event | None = None) -> bool:
        """Block until the clock reaches `instant` (by a move or by time flowing); False if `stop` is set first.

        Without `stop` nothing needs polling: a move wakes the waiter and time flowing ends its timeout."""
        with self._lock:
            while True:
                remaining = instant - self.now()
                if remaining <= 0:
                    return True
                if stop is not None and stop.is_set():
                    return False
                self._moved.wait(timeout=remaining if stop is None else min(poll_seconds, remaining))

    def wait_for(self, done: Callable[[], bool], instant: float, *, recheck_seconds: float = 10.0) -> bool:
        """Block until `done()` or the clock reaches `instant`; True if the instant came. A move or `wake()` makes
        the waiter look again, so a thousand waiters cost nothing while they wait (no polling: a 0.2 s poll each was
        5,000 wake-ups a second for a batch of 1,000 customers parked in their cutover Wait); `recheck_seconds` only
        bounds how late a `done()` that nobody announced with `wake()` is seen."""
        with self._lock:
            while True:
                remaining = instant - self.now()
                if remaining <= 0:
                    return True
                if done():
                    return False
                self._moved.wait(timeout=min(recheck_seconds, remaining))

    def wake(self) -> None:
        """Make every `wait_for` look at its condition again (something it waits on besides the clock changed)."""
        with self._lock:
            self._moved.notify_all()

    def _notify(self, old: float, new: float) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(old, new)

    def _persist(self) -> None:
        if self._state_file is None:
            return
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"offset_seconds": self._offset, "now": to_rfc3339(self.now())}))
        os.replace(tmp, self._state_file)
