"""Shared fixtures: one local AWS per test process (moto's state is per process), the template deployed on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billmig_local.stack import LocalStack, StackSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local-stack")
    stack = LocalStack(StackSettings(state_dir=state_dir))
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def sfn(local_stack: LocalStack) -> Any:
    return local_stack.client("stepfunctions")


@pytest.fixture(scope="session")
def dynamodb(local_stack: LocalStack) -> Any:
    return local_stack.client("dynamodb")


@pytest.fixture()
def lambda_faults(local_stack: LocalStack) -> Iterator[list[Any]]:
    assert local_stack.bridge is not None
    yield local_stack.bridge.faults
    local_stack.bridge.faults.clear()


def until(predicate: Any, *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail (not hang) after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
