"""The local scheduler: an EventBridge Scheduler schedule fires when the world clock passes its time, starts its
target state machine with the schedule's input, once per firing; a disabled schedule never fires."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from billmig_cli import executions
from billmig_local.stack import LocalStack

ROLE = "arn:aws:iam::123456789012:role/scheduler-test"


def test_a_schedule_fires_on_the_world_clock_once_per_firing(local_stack: LocalStack, sfn: Any) -> None:
    assert local_stack.scheduler is not None
    definition = {"StartAt": "Fired", "States": {"Fired": {"Type": "Pass", "End": True}}}
    created = sfn.create_state_machine(name="scheduler-test-target", definition=json.dumps(definition), roleArn=ROLE)
    machine = created["stateMachineArn"]
    scheduler = local_stack.client("scheduler")
    for name, state in (("scheduler-test-daily", "ENABLED"), ("scheduler-test-paused", "DISABLED")):
        scheduler.create_schedule(
            Name=name,
            ScheduleExpression="cron(0 6 * * ? *)",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            State=state,
            Target={"Arn": machine, "RoleArn": ROLE, "Input": json.dumps({"fired_by": name})},
        )
    try:
        local_stack.scheduler.tick()  # the runner anchors a schedule when it first sees it
        now = local_stack.clock.now_datetime()
        due = now.replace(hour=6, minute=0, second=0, microsecond=0)
        if due <= now:
            due += timedelta(days=1)
        moved = local_stack.move_clock(to=due.timestamp() + 30)
        ours = [f for f in moved["fired"] if f["schedule"].startswith("schedule/default/scheduler-test-")]
        assert [f["schedule"] for f in ours] == ["schedule/default/scheduler-test-daily"]
        assert ours[0]["at"].startswith(due.strftime("%Y-%m-%dT06:00:00"))
        result = executions.wait(sfn, ours[0]["execution_arn"])
        assert result["status"] == "SUCCEEDED"
        assert json.loads(result["output"]) == {"fired_by": "scheduler-test-daily"}
        # The firing's execution name is derived from its time, and the same firing never starts twice.
        assert ours[0]["execution_arn"].rsplit(":", 1)[1] == f"scheduler-test-daily-{due:%Y%m%dT060000Z}"
        again = local_stack.move_clock(advance=60)
        assert not [f for f in again["fired"] if f["schedule"].startswith("schedule/default/scheduler-test-")]
        assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    finally:
        for name in ("scheduler-test-daily", "scheduler-test-paused"):
            scheduler.delete_schedule(Name=name)
