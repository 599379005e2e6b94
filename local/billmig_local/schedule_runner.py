"""Fire the deployed EventBridge schedules on the world clock (moto stores schedules but never fires them).

It reads Scheduler schedules and scheduled EventBridge rules through the ordinary APIs, and when the world clock
passes a firing time it starts the target state machine (or invokes the target function) with the schedule's input.
Each firing's execution name is derived from the schedule and the firing time, so a firing can never start twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billmig_local.clock import WorldClock
from billmig_local.schedule_expressions import UnsupportedExpression, next_fire

log = logging.getLogger(__name__)
MAX_CATCH_UP = 500  # firings per schedule per clock move; a larger jump is reported, not silently dropped


@dataclass
class ScheduleDef:
    key: str
    expression: str
    timezone: str
    target_arn: str
    input: str
    enabled: bool


@dataclass
class Firing:
    schedule: str
    at: datetime
    target_arn: str
    execution_arn: str | None


class ScheduleRunner:
    def __init__(
        self,
        *,
        clock: WorldClock,
        clients: Callable[[str], Any],
        on_fire: Callable[[Firing], None] | None = None,
    ) -> None:
        self.clock = clock
        self._client = clients
        self._on_fire = on_fire
        self._anchors: dict[str, datetime] = {}
        self._last: dict[str, datetime] = {}
        self.fired: list[Firing] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- discovery
    def schedules(self) -> list[ScheduleDef]:
        found: list[ScheduleDef] = []
        scheduler = self._client("scheduler")
        for summary in scheduler.list_schedules().get("Schedules", []):
            s = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
            found.append(
                ScheduleDef(
                    key=f"schedule/{s.get('GroupName', 'default')}/{s['Name']}",
                    expression=s["ScheduleExpression"],
                    timezone=s.get("ScheduleExpressionTimezone") or "UTC",
                    target_arn=s["Target"]["Arn"],
                    input=s["Target"].get("Input") or "{}",
                    enabled=s.get("State", "ENABLED") == "ENABLED",
                )
            )
        events = self._client("events")
        for rule in events.list_rules().get("Rules", []):
            if not rule.get("ScheduleExpression"):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
                found.append(
                    ScheduleDef(
                        key=f"rule/{rule['Name']}/{target['Id']}",
                        expression=rule["ScheduleExpression"],
                        timezone="UTC",
                        target_arn=target["Arn"],
                        input=target.get("Input") or "{}",
                        enabled=rule.get("State", "ENABLED") == "ENABLED",
                    )
                )
        return found

    # -- firing
    def tick(self) -> list[Firing]:
        """Fire everything due up to the world clock's now; returns the firings of this tick."""
        with self._lock:
            now = self.clock.now_datetime()
            fired: list[Firing] = []
            for schedule in self.schedules():
                anchor = self._anchors.setdefault(schedule.key, now)
                last = self._last.setdefault(schedule.key, anchor)
                if not schedule.enabled:
                    self._last[schedule.key] = now
                    continue
                for _ in range(MAX_CATCH_UP):
                    try:
                        due = next_fire(schedule.expression, last, anchor=anchor, timezone=schedule.timezone)
                    except UnsupportedExpression as exc:
                        log.warning("schedule %s not run locally: %s", schedule.key, exc)
                        break
                    if due is None or due > now:
                        break
                    fired.append(self._fire(schedule, due))
                    last = due
                else:
                    log.warning("schedule %s: more than %d firings due; the rest wait", schedule.key, MAX_CATCH_UP)
                self._last[schedule.key] = last
            self.fired.extend(fired)
            return fired

    def _fire(self, schedule: ScheduleDef, at: datetime) -> Firing:
        execution_arn: str | None = None
        if ":states:" in schedule.target_arn:
            sfn = self._client("stepfunctions")
            name = f"{schedule.key.split('/')[-1]}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"[:80]
            response = sfn.start_execution(stateMachineArn=schedule.target_arn, name=name, input=schedule.input)
            execution_arn = response["executionArn"]
        elif ":lambda:" in schedule.target_arn:
            self._client("lambda").invoke(
                FunctionName=schedule.target_arn, InvocationType="Event", Payload=schedule.input.encode()
            )
        else:
            log.warning(
                "schedule %s targets %s, which the local runner does not start", schedule.key, schedule.target_arn
            )
        firing = Firing(schedule=schedule.key, at=at, target_arn=schedule.target_arn, execution_arn=execution_arn)
        if self._on_fire:
            self._on_fire(firing)
        return firing

    # -- background loop
    def start(self) -> None:
        self.tick()  # anchor every schedule at the moment the stack came up
        self._thread = threading.Thread(target=self._run, name="schedule-runner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("schedule runner tick failed")
            self.clock.wait_until(self.clock.now() + 1.0, stop=self._stop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
