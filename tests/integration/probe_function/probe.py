"""Handlers that let a test observe the local execution environments from inside them (deployed as a zip)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

CALLS = [0]  # module state: kept while the environment stays warm


def _until(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def meet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A barrier across processes: each party leaves its mark, then waits for all the others' marks."""
    folder = Path(event["folder"])
    (folder / context.aws_request_id).touch()
    met = _until(lambda: len(list(folder.iterdir())) >= event["parties"], 30)
    return {"met": met, "pid": os.getpid()}


def environment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"env": dict(os.environ), "pid": os.getpid()}


def count(event: dict[str, Any], context: Any) -> dict[str, Any]:
    CALLS[0] += 1
    return {"calls": CALLS[0], "pid": os.getpid()}


def hold(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Occupy this environment until the test releases it."""
    (Path(event["folder"]) / "held").touch()
    return {"released": _until((Path(event["folder"]) / "release").exists, 30)}


def fail_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The first call hangs past the timeout or exits the process; the retry succeeds."""
    marker = Path(event["folder"]) / "failed-once"
    if not marker.exists():
        marker.touch()
        print("about to fail on purpose", flush=True)
        if event["how"] == "hang":
            time.sleep(120)
        sys.stdout.flush()
        os._exit(event.get("code", 3))
    return {"attempt": "second", "pid": os.getpid()}


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(event.get("code", 3))


def say(event: dict[str, Any], context: Any) -> str:
    print(event["words"])
    return "said"


def world_now(event: dict[str, Any], context: Any) -> float:
    return time.time() + float(os.environ["BILLMIG_WORLD_CLOCK_OFFSET_SECONDS"])


def refuse(event: dict[str, Any], context: Any) -> None:
    raise LookupError("no such thing")
