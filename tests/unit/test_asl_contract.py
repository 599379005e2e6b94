"""The state machines and the domain agree: every Task retries exactly the transient errors the domain defines,
and every `${...}` in an ASL file is substituted by the template (and nothing else is)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from billmig.errors import PermanentError, TransientError
from billmig.retry_policy import (
    LAMBDA_TRANSIENT_ERROR_NAMES,
    PERMANENT_ERROR_NAMES,
    TRANSIENT_ERROR_NAMES,
    error_names,
    is_transient,
)
from billmig.steps import Step
from billmig_local.asl_retries import render, tasks, with_policy_retries
from billmig_local.packaging import load_template

REPO = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((REPO / "statemachine").glob("*.asl.json"))


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_task_retries_every_transient_error_and_nothing_permanent(path: Path) -> None:
    definition = json.loads(path.read_text())
    for name, task in tasks(definition["States"]):
        retried = [error for rule in task.get("Retry", []) for error in rule["ErrorEquals"]]
        domain = {e for e in retried if not e.startswith(("Lambda.", "States."))}
        assert domain == set(TRANSIENT_ERROR_NAMES), f"{path.name}:{name} retries {sorted(domain)}"
        assert set(LAMBDA_TRANSIENT_ERROR_NAMES) <= set(retried), f"{path.name}:{name} misses a Lambda retrier"
        assert not set(retried) & set(PERMANENT_ERROR_NAMES), f"{path.name}:{name} retries a permanent error"
        assert len(retried) == len(set(retried)), f"{path.name}:{name} names an error in two retriers"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_the_retry_blocks_are_generated_from_the_policy(path: Path) -> None:
    """`python -m billmig_local.asl_retries` rewrites them; a stale file fails here."""
    assert render(with_policy_retries(json.loads(path.read_text()))) == path.read_text()


def test_the_policy_sees_transient_errors_at_any_depth() -> None:
    from billmig.errors import VendorThrottled

    class ThrottledByAnAdapter(VendorThrottled):
        """A subclass of a subclass of the category: retried like its parent."""

    assert "ThrottledByAnAdapter" in error_names(TransientError)
    assert "ThrottledByAnAdapter" not in error_names(PermanentError)
    assert "StiggImportPending" in TRANSIENT_ERROR_NAMES  # defined beside its vendor, found through the policy
    assert is_transient("Lambda.TooManyRequestsException")
    assert not is_transient("VendorRejected")


def _step_values(node: Any) -> list[str]:
    """Every literal `step` a state passes to a Lambda (in Parameters, ItemSelector, Pass results)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "step" and isinstance(value, str):
                found.append(value)
            found.extend(_step_values(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_step_values(value))
    return found


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_step_an_asl_file_names_is_a_known_step(path: Path) -> None:
    named = _step_values(json.loads(path.read_text()))
    assert named, f"{path.name} names no step"
    assert set(named) <= {step.value for step in Step}, f"{path.name}: {sorted(set(named) - set(Step))}"


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


@pytest.mark.parametrize(
    ("state", "width"), [("MigrateCustomers", "max_concurrency"), ("CutOverCustomers", "cutover_concurrency")]
)
def test_the_migration_maps_read_the_batch_from_s3_as_distributed_maps(state: str, width: str) -> None:
    """Keys travel, not documents (issue 13): both Maps read the batch's customer list from S3 themselves, run each
    customer as a child execution, and take their width from the execution's input, which `billmig metronome start`
    writes (the migration's config concurrency; every customer at once for the cutover's weeks-long waits)."""
    import inspect

    from billmig_cli import metronome_migration

    machine = json.loads((REPO / "statemachine" / "metronome_migration.asl.json").read_text())
    found = machine["States"][state]
    assert found["Type"] == "Map"
    assert found["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert found["ItemReader"]["Parameters"] == {"Bucket.$": "$.bucket", "Key.$": "$.customers_key"}
    assert found["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert found["MaxConcurrencyPath"] == f"$.{width}" and "MaxConcurrency" not in found
    assert found["ItemSelector"]["stripe_customer_id.$"] == "$$.Map.Item.Value.stripe_customer_id"
    start = inspect.getsource(metronome_migration.start)
    for key in ("bucket", "customers_key", width):
        assert f'"{key}":' in start, key
