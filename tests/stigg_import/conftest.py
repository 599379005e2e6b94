"""The Stigg import on the local stack: the template's state machine, the Stigg and Stripe emulators over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from billmig_cli import aws_target
from billmig_local.emulators.stigg.seed import seed_catalogue
from billmig_local.stack import LocalStack
from import_world import Write
from stigg import Stigg
from stigg.client import StiggClient


@pytest.fixture(scope="module")
def stigg(local_stack: LocalStack) -> StiggClient:
    client = Stigg.create_client(
        "local-stigg-server-key", api_url=f"{local_stack.emulators['stigg'].url}/graphql", enable_edge=False
    )
    seed_catalogue(client)
    return client


@pytest.fixture(scope="module")
def stripe_client(local_stack: LocalStack) -> stripe.StripeClient:
    url = local_stack.emulators["stripe"].url
    return stripe.StripeClient("sk_test_local", base_addresses={"api": url, "meter_events": url}, max_network_retries=0)


@pytest.fixture()
def aws(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The CLI's boto3 pointed at the local stack, exactly as `AWS_ENDPOINT_URL` does for an operator."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", local_stack.settings.region)
    monkeypatch.delenv("STIGG_SERVER_API_KEY", raising=False)
    aws_target.stack_outputs.cache_clear()
    return local_stack


@pytest.fixture()
def write(tmp_path: Path) -> Write:
    def write_file(name: str, root: str, records: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({root: records}))
        return path

    return write_file


@pytest.fixture()
def stigg_requests(local_stack: LocalStack) -> Iterator[Callable[[str], int]]:
    """How many GraphQL requests named an operation, from the emulator's request log."""
    control = local_stack.emulators["stigg"].control

    def count(operation: str) -> int:
        return sum(1 for r in control.log if operation in r.body)

    yield count
