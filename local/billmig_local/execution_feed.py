"""One line per Step Functions execution event, as they happen: the foreground output of `billmig local up`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def describe_event(machine: str, execution: str, event: dict[str, Any]) -> str:
    kind = event["type"]
    detail = ""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            detail = value.get("name") or value.get("error") or value.get("resource") or ""
            if value.get("error"):
                detail = f"{value.get('error')}: {str(value.get('cause', ''))[:120]}"
            break
    stamp = event["timestamp"].strftime("%H:%M:%S") if hasattr(event["timestamp"], "strftime") else event["timestamp"]
    return f"{stamp} {machine}/{execution} #{event['id']} {kind}" + (f" {detail}" if detail else "")


class ExecutionFeed:
    """Polls execution histories through the Step Functions API and emits each new event once."""

    def __init__(self, client: Any, emit: Callable[[str], None], *, interval: float = 0.25) -> None:
        self._sfn = client
        self._emit = emit
        self._interval = interval
        self._seen: dict[str, int] = {}
        self._finished: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        emitted = 0
        for machine in self._sfn.list_state_machines().get("stateMachines", []):
            for execution in self._sfn.list_executions(stateMachineArn=machine["stateMachineArn"]).get(
                "executions", []
            ):
                arn = execution["executionArn"]
                if arn in self._finished:
                    continue
                events = self._sfn.get_execution_history(executionArn=arn, maxResults=1000).get("events", [])
                for event in events[self._seen.get(arn, 0) :]:
                    self._emit(describe_event(machine["name"], execution["name"], event))
                    emitted += 1
                self._seen[arn] = len(events)
                if execution["status"] != "RUNNING":
                    self._finished.add(arn)
        return emitted

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="execution-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # the feed is a view; a failed poll must not take the stack down
                log.debug("execution feed poll failed", exc_info=True)

    def stop(self) -> None:
        """Stop polling after one last poll, so an execution that ended just before Ctrl-C is still printed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.poll()
        except Exception:
            log.debug("final execution feed poll failed", exc_info=True)
