"""Shared fixtures: one local AWS per test process (moto's state is per process), the template deployed on it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from billmig_cli import aws_target
from billmig_local.emulators.stigg.seed import seed_catalogue
from billmig_local.stack import LocalStack, StackSettings
from playwright.sync_api import Browser, Page, sync_playwright
from stigg import Stigg
from stigg.client import StiggClient

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's services.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Modules that move the shared world clock past the session book's cutover boundary (a whole cutover timeline; the
# parity module's closed period ends at that boundary). Each pytest worker has one local stack, and the world clock
# only goes forward, so these run after every other module, in this order: a module dated "now" never runs on a clock
# another module has left months past it, and the cutover timeline never starts on a clock parity left past its
# boundary (the parity module copes with a clock months ahead; the cutover module does not). The Makefile passes
# `--no-loadscope-reorder`: by default `--dist loadfile` hands out the biggest modules first, ignoring this order.
MOVES_THE_WORLD_CLOCK_BY_MONTHS = (
    "tests/e2e/metronome/test_cutover.py",
    "tests/e2e/metronome/test_rollback_and_cleanup.py",
    "tests/e2e/metronome/test_parity_on_local_stack.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collection order is the order `--dist loadfile` hands modules to workers: the clock movers go last."""
    order = {module: rank for rank, module in enumerate(MOVES_THE_WORLD_CLOCK_BY_MONTHS)}
    items.sort(key=lambda item: order.get(item.nodeid.split("::")[0], -1))


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


# --- the Stigg import on the local stack: the Stigg and Stripe emulators over HTTP ---------------------------------
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
def aws(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The CLI's boto3 clients pointed at the local stack explicitly, leaving the process environment alone."""
    monkeypatch.delenv("STIGG_SERVER_API_KEY", raising=False)
    aws_target.pin_local_endpoint(local_stack.endpoint, local_stack.settings.region)
    yield local_stack
    aws_target.unpin()


@pytest.fixture()
def write(tmp_path: Path) -> Callable[[str, str, list[dict[str, Any]]], Path]:
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


# --- pages in headless Chromium (Debian's; Playwright drives it, no browser is downloaded) ------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make pytest` installs it"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    context.close()
