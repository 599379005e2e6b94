"""Starting and following Step Functions executions, the way operators run batches."""

from __future__ import annotations

import json
import re
import time
from typing import Any

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(*parts: str) -> str:
    """A readable, valid execution name (<= 80 chars of [A-Za-z0-9_-])."""
    return _NAME_UNSAFE.sub("-", "-".join(p for p in parts if p))[:80]


def start(sfn: Any, state_machine_arn: str, payload: dict[str, Any], name: str) -> str:
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    return str(response["executionArn"])


def wait(sfn: Any, execution_arn: str, *, timeout: float = 300.0) -> dict[str, Any]:
    """Poll until the execution leaves RUNNING (back-off from 50 ms to 250 ms: one cheap call a poll); raises
    TimeoutError past `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(0.25, delay * 1.5)


def wait_for_map_run(sfn: Any, execution_arn: str, items: int, *, timeout: float = 300.0) -> dict[str, Any]:
    """Poll the execution's (first) Map Run until all `items` have ended: two cheap calls a poll, whatever the size."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        # Asked before the execution's worker has started, moto's ListMapRuns fails: wait for the Map Run first.
        opening = sfn.get_execution_history(executionArn=execution_arn, maxResults=20)["events"]
        started = any(e["type"] == "MapRunStarted" for e in opening)
        runs = sfn.list_map_runs(executionArn=execution_arn)["mapRuns"] if started else []
        if runs:
            counts: dict[str, Any] = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
            if counts["total"] >= items and counts["pending"] == 0 and counts["running"] == 0:
                return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn}: the Map Run has not ended its {items} items after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def aws_console_url(execution_arn: str) -> str:
    """The execution's page in the AWS Step Functions console (its region is the ARN's fourth field)."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
