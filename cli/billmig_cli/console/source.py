"""Where the console's pages get their data: the Step Functions API and the progress table, through boto3.

Only the calls the Step Functions console itself makes. A finished execution never changes, so its description and
history are kept once read; running ones are read again on every page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billmig_cli.console.history import ExecutionAnalysis, analyse

EXECUTION_LIST_LIMIT = 100
BATCH_KEYS = ("batch_id", "import_id")  # the field of an execution's input that names its run in the progress table


@dataclass
class CustomerRow:
    """One customer of a batch as the progress store has it, in the console's terms."""

    customer_id: str
    phase: str
    current_step: str | None
    steps: list[dict[str, Any]]
    error_type: str | None
    error_message: str | None
    updated_at: datetime


class ConsoleSource:
    def __init__(
        self,
        client: Callable[[str], Any],
        *,
        stack_name: str = "billmig",
        local: bool = False,
    ) -> None:
        self._client = client
        self.sfn = client("stepfunctions")
        self.stack_name = stack_name
        self.local = local
        self._lock = threading.Lock()
        self._descriptions: dict[str, dict[str, Any]] = {}
        self._histories: dict[str, list[dict[str, Any]]] = {}
        self._definitions: dict[str, str] = {}
        self._analyses: dict[str, ExecutionAnalysis] = {}
        self._outputs: dict[str, str] | None = None

    # -- state machines and executions
    def state_machines(self) -> list[dict[str, Any]]:
        machines: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            machines.extend(page["stateMachines"])
        return sorted(machines, key=lambda m: m["name"])

    def executions(self, machine_arn: str, status: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"stateMachineArn": machine_arn, "maxResults": EXECUTION_LIST_LIMIT}
        if status:
            kwargs["statusFilter"] = status
        return list(self.sfn.list_executions(**kwargs).get("executions", []))

    def all_executions(self, status: str | None = None, machine_arn: str | None = None) -> list[dict[str, Any]]:
        machines = [m["stateMachineArn"] for m in self.state_machines()] if machine_arn is None else [machine_arn]
        found = [e for arn in machines for e in self.executions(arn, status)]
        return sorted(found, key=lambda e: e["startDate"], reverse=True)

    def describe(self, execution_arn: str) -> dict[str, Any]:
        with self._lock:
            if execution_arn in self._descriptions:
                return self._descriptions[execution_arn]
        description: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
        description.pop("ResponseMetadata", None)
        if description["status"] != "RUNNING":
            with self._lock:
                self._descriptions[execution_arn] = description
        return description

    def history(self, execution_arn: str, *, finished: bool) -> list[dict[str, Any]]:
        with self._lock:
            if execution_arn in self._histories:
                return self._histories[execution_arn]
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn, PaginationConfig={"PageSize": 1000}
        ):
            events.extend(page["events"])
        if finished:
            with self._lock:
                self._histories[execution_arn] = events
        return events

    def analysis(self, execution_arn: str) -> tuple[dict[str, Any], list[dict[str, Any]], ExecutionAnalysis]:
        description = self.describe(execution_arn)
        running = description["status"] == "RUNNING"
        with self._lock:
            kept = self._analyses.get(execution_arn)
        if kept is not None:
            return description, self._histories[execution_arn], kept
        events = self.history(execution_arn, finished=not running)
        analysis = analyse(events, execution_running=running)
        if not running:
            with self._lock:
                self._analyses[execution_arn] = analysis
        return description, events, analysis

    def definition(self, description: dict[str, Any]) -> str:
        """The definition the execution ran (a version or alias may differ from the machine's latest)."""
        arn = description["executionArn"]
        with self._lock:
            if arn in self._definitions:
                return self._definitions[arn]
        try:
            definition = str(self.sfn.describe_state_machine_for_execution(executionArn=arn)["definition"])
        except (ClientError, BotoCoreError, KeyError):
            definition = str(
                self.sfn.describe_state_machine(stateMachineArn=description["stateMachineArn"])["definition"]
            )
        with self._lock:
            self._definitions[arn] = definition
        return definition

    def map_runs(self, execution_arn: str) -> list[dict[str, Any]]:
        """Distributed Map runs of an execution, each with its item counts by status."""
        try:
            listed = self.sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
        except (ClientError, BotoCoreError):
            return []
        runs = []
        for run in listed:
            described = self.sfn.describe_map_run(mapRunArn=run["mapRunArn"])
            described.pop("ResponseMetadata", None)
            runs.append(described)
        return runs

    # -- batches
    def batch_of(self, execution_arn: str) -> str | None:
        """The run in the progress table an execution works on: its input's `batch_id` (or `import_id`)."""
        try:
            payload = json.loads(self.describe(execution_arn).get("input") or "{}")
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        for key in BATCH_KEYS:
            if isinstance(payload.get(key), str):
                return str(payload[key])
        return None

    def batches(self) -> dict[str, list[dict[str, Any]]]:
        """Every batch named by a recent execution, with those executions (newest first)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for execution in self.all_executions():
            batch = self.batch_of(execution["executionArn"])
            if batch is not None:
                found.setdefault(batch, []).append(execution)
        return found

    def outputs(self) -> dict[str, str]:
        if self._outputs is None:
            stack = self._client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"][0]
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return self._outputs

    def customers(self, batch_id: str) -> list[CustomerRow]:
        """Each subject of the run (a customer, or an import's record or chunk) as the progress store has it."""
        from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

        store = DynamoDBProgressStore(self.outputs()["ProgressTableName"], client=self._client("dynamodb"))
        rows = []
        for progress in store.all_in_run(batch_id):
            steps = []
            error_type = error_message = None
            for name, step in progress.steps.items():
                steps.append(
                    {
                        "name": name,
                        "status": step.status.value,
                        "attempts": step.attempts,
                        "runner": step.runner,
                        "outcome": step.outcome,
                        "error": f"{step.last_error.type}: {step.last_error.message}" if step.last_error else None,
                    }
                )
                if step.status.value == "failed" and step.last_error is not None:
                    error_type, error_message = step.last_error.type, step.last_error.message
            rows.append(
                CustomerRow(
                    customer_id=progress.subject,
                    phase=progress.state.value,
                    current_step=progress.current_step,
                    steps=steps,
                    error_type=error_type,
                    error_message=error_message,
                    updated_at=progress.updated_at,
                )
            )
        return sorted(rows, key=lambda r: r.customer_id)


def duration_seconds(execution: dict[str, Any]) -> float:
    end = execution.get("stopDate") or datetime.now(UTC)
    return float((end - execution["startDate"]).total_seconds())
