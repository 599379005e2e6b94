"""The state machines and the domain agree: every Task retries exactly the transient errors the domain defines,
and every `${...}` in an ASL file is substituted by the template (and nothing else is)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from billmig.errors import PERMANENT_ERROR_NAMES, TRANSIENT_ERROR_NAMES
from billmig_local.packaging import load_template

REPO = Path(__file__).resolve().parents[1]
ASL_FILES = sorted((REPO / "statemachine").glob("*.asl.json"))


def _tasks(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in states.items():
        if state["Type"] == "Task":
            found.append((name, state))
        for nested in ("Iterator", "ItemProcessor"):
            if nested in state:
                found.extend(_tasks(state[nested]["States"]))
        for branch in state.get("Branches", []):
            found.extend(_tasks(branch["States"]))
    return found


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_task_retries_the_transient_errors_and_only_those(path: Path) -> None:
    definition = json.loads(path.read_text())
    for name, task in _tasks(definition["States"]):
        retried = {error for rule in task.get("Retry", []) for error in rule["ErrorEquals"]}
        domain = retried - {e for e in retried if e.startswith(("Lambda.", "States."))}
        assert domain == set(TRANSIENT_ERROR_NAMES), f"{path.name}:{name} retries {sorted(domain)}"
        assert not retried & set(PERMANENT_ERROR_NAMES), f"{path.name}:{name} retries a permanent error"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_substitutions_match_the_template(path: Path) -> None:
    used = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
    machines = [
        r["Properties"]
        for r in load_template(REPO / "template.yaml")["Resources"].values()
        if r["Type"] == "AWS::Serverless::StateMachine"
        and r["Properties"].get("DefinitionUri") == f"statemachine/{path.name}"
    ]
    assert len(machines) == 1, f"{path.name} is deployed by exactly one state machine"
    assert used == set(machines[0].get("DefinitionSubstitutions", {}))
