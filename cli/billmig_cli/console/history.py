"""What an execution's event history says about each state: visits, attempts, retries, caught failures.

Events of inline Map iterations interleave; each event's `previousEventId` names the event before it on the same
path, so following it puts every event in its iteration and its state visit.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

ATTEMPT_EVENTS = {"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"}
FAILURE_EVENTS = {
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "ActivityScheduleFailed",
    "MapStateFailed",
    "ParallelStateFailed",
    "MapRunFailed",
}
ITERATION_END_EVENTS = {"MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"}
MAP_END_EVENTS = {"MapStateSucceeded", "MapStateFailed", "MapStateAborted", "MapStateExited"}


class Outcome(StrEnum):
    """How a state fared, in the order a state's colour is chosen when its visits differ."""

    FAILED = "failed"
    RUNNING = "running"
    CAUGHT = "caught"
    RETRIED = "retried"
    SUCCEEDED = "succeeded"
    NOT_REACHED = "not-reached"


Scope = tuple[tuple[str, int], ...]  # (map state, iteration index) from the outermost Map inwards


@dataclass
class Visit:
    """One entry into a state, up to its exit."""

    state: str
    scope: Scope
    entered_id: int
    input: str | None
    exited_id: int | None = None
    output: str | None = None
    attempts: int = 0
    failures: int = 0
    ended_in_failure: bool = False
    error: str | None = None
    cause: str | None = None
    outcome: Outcome = Outcome.RUNNING

    @property
    def iteration(self) -> str | None:
        return iteration_label(self.scope)


@dataclass
class StateSummary:
    state: str
    outcome: Outcome = Outcome.NOT_REACHED
    counts: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    @property
    def visits(self) -> int:
        return sum(self.counts.values())


@dataclass
class MapItems:
    """Items of one inline Map state, by status, from its iteration events."""

    state: str
    total: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    aborted: int = 0

    @property
    def running(self) -> int:
        return self.started - self.succeeded - self.failed - self.aborted

    @property
    def pending(self) -> int:
        return max(0, self.total - self.started)


@dataclass
class EventRow:
    id: int
    type: str
    timestamp: datetime
    elapsed_ms: int
    state: str | None
    iteration: str | None
    detail: str


@dataclass
class ExecutionAnalysis:
    visits: list[Visit]
    states: dict[str, StateSummary]
    maps: dict[str, MapItems]
    rows: list[EventRow]
    events: dict[int, dict[str, Any]]
    map_run_states: dict[str, str] = field(default_factory=dict)  # distributed Map run ARN -> its Map state

    def visits_of(self, state: str, iteration: str | None = None) -> list[Visit]:
        return [v for v in self.visits if v.state == state and (iteration is None or v.iteration == iteration)]

    def iteration_values(self) -> dict[str, list[str]]:
        """Every string in each Map iteration's first input, to find the iteration that handled a record."""
        found: dict[str, list[str]] = {}
        seen: set[str] = set()
        for visit in self.visits:
            label = visit.iteration
            if label is None or label in seen:
                continue
            seen.add(label)
            for value in _strings(_parse(visit.input)):
                found.setdefault(value, []).append(label)
        return found


def iteration_label(scope: Scope) -> str | None:
    return "/".join(f"{name}:{index}" for name, index in scope) or None


def analyse(events: list[dict[str, Any]], *, execution_running: bool) -> ExecutionAnalysis:
    """Walk the history once: each event lands in its iteration and state visit; each visit gets its outcome."""
    by_id: dict[int, dict[str, Any]] = {e["id"]: e for e in events}
    scope_of: dict[int, Scope] = {}
    visit_of: dict[int, Visit | None] = {}
    open_visits: dict[tuple[Scope, str], Visit] = {}
    visits: list[Visit] = []
    maps: dict[str, MapItems] = {}
    rows: list[EventRow] = []
    map_run_states: dict[str, str] = {}
    start = events[0]["timestamp"] if events else None

    for event in events:
        kind: str = event["type"]
        prev = event.get("previousEventId") or 0
        scope = scope_of.get(prev, ())
        visit = visit_of.get(prev)
        details = _details(event)
        if kind in MAP_END_EVENTS:
            if by_id.get(prev, {}).get("type") in ITERATION_END_EVENTS:
                scope = scope[:-1]
            visit = _open_map_visit(visits, scope) or visit
        if kind == "MapIterationStarted":
            name = str(details.get("name", "?"))
            # a later iteration may follow the end of an earlier one: it starts beside it, not inside it
            outer = next((i for i, (map_name, _) in enumerate(scope) if map_name == name), len(scope))
            scope = (*scope[:outer], (name, int(details.get("index", 0))))
            visit = None
        scope_of[event["id"]] = scope

        if kind.endswith("StateEntered"):
            if visit is not None and visit.exited_id is None and visit.ended_in_failure and visit.scope == scope:
                visit.exited_id = event["id"]  # a Catch that moved on without an exit event: closed here
            visit = Visit(
                state=details.get("name", "?"), scope=scope, entered_id=event["id"], input=details.get("input")
            )
            visits.append(visit)
            open_visits[(scope, visit.state)] = visit
        elif kind.endswith("StateExited"):
            visit = open_visits.pop((scope, details.get("name", "?")), visit)
            if visit is not None:
                visit.exited_id = event["id"]
                visit.output = details.get("output")
        elif visit is not None and kind in ATTEMPT_EVENTS:
            visit.attempts += 1
            visit.ended_in_failure = False
        elif visit is not None and kind in FAILURE_EVENTS:
            visit.failures += 1
            visit.ended_in_failure = True
            visit.error, visit.cause = details.get("error"), details.get("cause")
        visit_of[event["id"]] = visit
        if kind == "MapRunStarted" and visit is not None and details.get("mapRunArn"):
            map_run_states[str(details["mapRunArn"])] = visit.state

        _count_map_items(maps, kind, details, visit)
        rows.append(
            EventRow(
                id=event["id"],
                type=kind,
                timestamp=event["timestamp"],
                elapsed_ms=int((event["timestamp"] - start).total_seconds() * 1000) if start else 0,
                state=visit.state if visit is not None else details.get("name"),
                iteration=iteration_label(scope),
                detail=_detail_line(details),
            )
        )

    for visit in visits:
        visit.outcome = _outcome(visit, execution_running)
    return ExecutionAnalysis(
        visits=visits, states=_summaries(visits), maps=maps, rows=rows, events=by_id, map_run_states=map_run_states
    )


def _outcome(visit: Visit, execution_running: bool) -> Outcome:
    if visit.exited_id is not None:
        if visit.ended_in_failure:
            return Outcome.CAUGHT
        return Outcome.RETRIED if visit.failures else Outcome.SUCCEEDED
    if execution_running:
        return Outcome.RUNNING
    return Outcome.FAILED


_PRECEDENCE = list(Outcome)


def _summaries(visits: list[Visit]) -> dict[str, StateSummary]:
    states: dict[str, StateSummary] = {}
    for visit in visits:
        summary = states.setdefault(visit.state, StateSummary(state=visit.state, outcome=Outcome.SUCCEEDED))
        summary.counts[visit.outcome.value] += 1
        summary.retries += visit.failures - (1 if visit.ended_in_failure else 0)
        if _PRECEDENCE.index(visit.outcome) < _PRECEDENCE.index(summary.outcome):
            summary.outcome = visit.outcome
    return states


def _open_map_visit(visits: list[Visit], scope: Scope) -> Visit | None:
    """The Map state whose iterations just ended: the latest visit still open in the scope around them."""
    for visit in reversed(visits):
        if visit.scope == scope and visit.exited_id is None:
            return visit
    return None


def _count_map_items(maps: dict[str, MapItems], kind: str, details: dict[str, Any], visit: Visit | None) -> None:
    if kind == "MapStateStarted" and visit is not None:
        maps.setdefault(visit.state, MapItems(state=visit.state)).total += int(details.get("length", 0))
    elif kind.startswith("MapIteration"):
        name = str(details.get("name", "?"))
        items = maps.setdefault(name, MapItems(state=name))
        if kind == "MapIterationStarted":
            items.started += 1
        elif kind == "MapIterationSucceeded":
            items.succeeded += 1
        elif kind == "MapIterationFailed":
            items.failed += 1
        elif kind == "MapIterationAborted":
            items.aborted += 1


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _detail_line(details: dict[str, Any]) -> str:
    if details.get("error") or details.get("cause"):
        return f"{details.get('error') or ''}: {cause_message(details.get('cause'))}"[:300]
    if details.get("resource"):
        return str(details["resource"]).rsplit(":", 1)[-1]
    if "index" in details:
        return f"item {details['index']}"
    if "length" in details:
        return f"{details['length']} items"
    return ""


def cause_message(cause: Any) -> str:
    """A Lambda error's cause is JSON with its message; other causes are shown as they are."""
    parsed = _parse(cause)
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return "" if cause is None else str(cause)


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def pretty_json(text: str | None) -> str:
    if text is None:
        return ""
    parsed = _parse(text)
    return json.dumps(parsed, indent=2, sort_keys=False, default=str) if not isinstance(parsed, str) else parsed
