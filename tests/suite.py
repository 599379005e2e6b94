"""What tests share besides fixtures: the repository root and polling with a deadline.

A module of its own (not `conftest`): several folders have a `conftest.py`, so `from suite import` can find the
wrong one, depending on which the worker loaded first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def until(predicate: Any, *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail (not hang) after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
