"""The time a function lives in: the host's clock on AWS, the local world's clock on the local stack.

The local stack runs the world at real time plus an offset (moved by `billmig local clock`), and tells a function
that offset in `BILLMIG_WORLD_CLOCK_OFFSET_SECONDS` as of its invocation; on AWS the variable is absent. Pacing and
back-off instants are stamped on this clock, the one the Stigg emulator counts its limits on, and waits are measured
against it, so locally a back-off is as real as on AWS.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Protocol

OFFSET_VARIABLE = "BILLMIG_WORLD_CLOCK_OFFSET_SECONDS"


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds."""
        ...

    def sleep_until(self, instant: float) -> None: ...


class WorldClock:
    def now(self) -> float:
        try:
            offset = float(os.environ.get(OFFSET_VARIABLE, "0") or 0)
        except ValueError:
            offset = 0.0
        return time.time() + offset

    def sleep_until(self, instant: float) -> None:
        remaining = instant - self.now()
        if remaining > 0:
            time.sleep(remaining)


def world_now() -> datetime:
    """The world clock's instant as an aware UTC datetime."""
    return datetime.fromtimestamp(WorldClock().now(), UTC)
