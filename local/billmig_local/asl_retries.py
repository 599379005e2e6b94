"""Write every Task's `Retry` block in the ASL files from `billmig.retry_policy`, the one definition of what is retried.

A Task's retriers are its specific ones (any retrier whose timing differs from the category retriers', e.g. a longer
wait for `StiggImportPending`) followed by the two category retriers the policy generates. Run
`python -m billmig_local.asl_retries` after adding an error class; the contract test checks the files are current.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from billmig.retry_policy import DOMAIN_RETRY, LAMBDA_RETRY, TRANSIENT_ERROR_NAMES, task_retriers

REPO_ROOT = Path(__file__).resolve().parents[2]


def tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Task state, at any depth (Map item processors, Parallel branches)."""
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for nested in ("Iterator", "ItemProcessor"):
            if nested in state:
                yield from tasks(state[nested]["States"])
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])


def _specific_retriers(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The retriers a Task chose for itself: not Lambda's, not the category's timing, not a catch-all of the rest."""
    specific: list[dict[str, Any]] = []
    for rule in rules:
        names = set(rule["ErrorEquals"])
        rest = set(TRANSIENT_ERROR_NAMES) - {n for r in specific for n in r["ErrorEquals"]}
        timing = {k: v for k, v in rule.items() if k != "ErrorEquals"}
        if any(n.startswith("Lambda.") for n in names) or timing in (DOMAIN_RETRY, LAMBDA_RETRY) or names >= rest:
            continue
        specific.append(rule)
    return specific


def with_policy_retries(definition: dict[str, Any]) -> dict[str, Any]:
    rewritten = copy.deepcopy(definition)
    for _, task in tasks(rewritten["States"]):
        task["Retry"] = task_retriers(_specific_retriers(task.get("Retry", [])))
    return rewritten


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2) + "\n"


def main(paths: list[str]) -> int:
    files = [Path(p) for p in paths] or sorted((REPO_ROOT / "statemachine").glob("*.asl.json"))
    for path in files:
        text = path.read_text()
        updated = render(with_policy_retries(json.loads(text)))
        if updated != text:
            path.write_text(updated)
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
