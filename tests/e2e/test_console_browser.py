"""The state machine console in headless Chromium (Debian's), on the local stack: after the demo's Stigg import and a
second import with a retried state and caught failures, every page shows what Step Functions and the progress store
say. Screenshots go to .local/test-output/console/."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billmig_cli import aws_target, demo_stigg, executions, stigg_import
from billmig_cli.console.graph import COLOURS
from billmig_cli.console.history import Outcome
from billmig_local.lambda_bridge import LambdaFault
from billmig_local.stack import LocalStack
from playwright.sync_api import Page, expect
from rich.console import Console
from suite import REPO

SCREENSHOTS = REPO / ".local" / "test-output" / "console"
BATCH = "console-batch"
STIGG_CUSTOMERS = 20  # the demo's import, smaller: the same files, paid plan and injected crash
PAID_CUSTOMERS = 6
GONE = {1: "sub_GoneConsole01", 4: "sub_GoneConsole04"}  # paid plans whose Stripe subscription no longer exists


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def world(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo's Stigg import, then an import of paid plans with two refused records and flaky dependencies."""
    assert local_stack.bridge is not None and local_stack.console is not None
    sfn = local_stack.client("stepfunctions")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_stigg, "DEMO_CUSTOMERS", STIGG_CUSTOMERS)
        demo_stigg.run_stigg_demo(Console(file=io.StringIO()), local_stack, tmp_path_factory.mktemp("stigg"))
    local_stack.bridge.faults.clear()
    # The demo's own totals assume a fresh world; on the suite's shared stack other modules may have imported the
    # same generated customers or provisioned before, so only the execution the console must show is checked.
    stigg = [
        e
        for e in sfn.list_executions(stateMachineArn=local_stack.outputs["StiggImportStateMachineArn"])["executions"]
        if "demo-stigg" in e["name"]
    ]
    assert stigg and stigg[0]["status"] == "SUCCEEDED", stigg
    stigg_arn = stigg[0]["executionArn"]

    started = _paid_plans_import(local_stack, tmp_path_factory.mktemp("console-import"))
    yield {"url": local_stack.console.url, "import": started.execution_arn, "stigg": stigg_arn}
    aws_target.unpin()


def _paid_plans_import(local_stack: LocalStack, work: Path) -> stigg_import.StartedImport:
    """Six customers on a paid plan billed by Stripe: two name a Stripe subscription that is gone, so their cancel
    is refused (caught and recorded, the import carries on); Stripe and the report step fail transiently first."""
    assert local_stack.bridge is not None
    stripe_url = local_stack.emulators["stripe"].url
    customers, paid = [], []
    for n in range(PAID_CUSTOMERS):
        stripe_customer, subscription = demo_stigg.paid_stripe_subscription(stripe_url, 1_767_225_600)
        customer = f"console-paid-{n}"
        customers.append({"customerId": customer, "billingId": stripe_customer, "paymentMethodId": "pm_card_visa"})
        paid.append(
            {
                "customerId": customer,
                "planId": "plan-growth",
                "billingId": GONE.get(n, subscription),
                "billingPeriod": "MONTHLY",
                "startDate": "2026-01-01T00:00:00Z",
            }
        )
    (work / "customers.json").write_text(json.dumps({"customers": customers}))
    (work / "paid-subscriptions.json").write_text(json.dumps({"subscriptions": paid}))
    files = stigg_import.ImportFiles(
        customers=work / "customers.json", subscriptions=[work / "paid-subscriptions.json"]
    )
    faults = local_stack.bridge.faults
    faults.append(LambdaFault(function="stripe-cancel-subscription", error="VendorUnavailable", times=2))
    faults.append(LambdaFault(function="stigg-import-report", error="VendorUnavailable", times=1))
    started = stigg_import.start_import(files, import_id=BATCH, paid_plan_ids=["plan-growth"], stack_name="billmig")
    assert stigg_import.follow(started, stack_name="billmig", timeout=300)["status"] == "SUCCEEDED"
    assert [f.times for f in faults] == [0, 0]
    faults.clear()
    return started


def node(page: Page, state: str) -> Any:
    return page.locator(f"#graph svg g#state-{state}")


def fill_of(page: Page, state: str) -> str:
    return str(node(page, state).locator("path, polygon").first.get_attribute("fill"))


def test_endpoints_json_names_the_console(local_stack: LocalStack) -> None:
    endpoints = json.loads((local_stack.settings.state_dir / "endpoints.json").read_text())
    assert endpoints["console"] == local_stack.console.url


def paid_key(n: int) -> str:
    """The progress store's subject for a paid plan: customer, resource (none) and plan."""
    return f"paid#console-paid-{n}/-/plan-growth"


def name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[1]


def test_the_execution_list_shows_the_stigg_import_and_the_batch(world: dict[str, Any], page: Page) -> None:
    name = name_of(world["import"])
    page.goto(world["url"] + "/")
    names = page.locator("#executions tr.execution").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert name in names
    assert any("demo-stigg" in n for n in names)
    machines = page.locator("#state-machines").inner_text()
    assert "billmig-metronome-migration-local" in machines and "billmig-stigg-import-local" in machines
    shot(page, "01-executions")

    page.click("a.filter[data-status='FAILED']")
    statuses = page.locator("#executions tr.execution").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) <= {"FAILED"}
    assert name not in page.locator("#executions").inner_text()
    page.click("a.filter[data-status='SUCCEEDED']")
    expect(page.locator(f"#executions tr.execution[data-name='{name}']")).to_have_count(1)
    statuses = page.locator("#executions tr.execution").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) == {"SUCCEEDED"}


def test_the_graph_shows_caught_failures_and_a_retried_state_in_their_colours(
    world: dict[str, Any], page: Page
) -> None:
    page.goto(world["url"] + executions_path(world["import"]))
    expect(page.locator("#graph[data-rendered='1']")).to_have_count(1)
    assert "caught" in str(node(page, "CancelInStripe").get_attribute("class")).split()
    assert fill_of(page, "CancelInStripe") == COLOURS[Outcome.CAUGHT][0]
    assert "with-retries" in str(node(page, "CancelInStripe").get_attribute("class")).split()  # two VendorUnavailable
    assert "retried" in str(node(page, "Report").get_attribute("class")).split()
    assert fill_of(page, "Report") == COLOURS[Outcome.RETRIED][0]
    assert fill_of(page, "RecordCancelFailure") == COLOURS[Outcome.SUCCEEDED][0]
    assert fill_of(page, "ProvisionInStigg") == COLOURS[Outcome.SUCCEEDED][0]
    assert "2 caught" in str(node(page, "CancelInStripe").text_content())
    row = page.locator("#map-runs tr[data-map='PaidPlans']").inner_text().split("\t")
    assert row[1:5] == ["inline", str(PAID_CUSTOMERS), str(PAID_CUSTOMERS), "0"]
    shot(page, "02-import-execution")

    node(page, "Report").locator("a").first.click()
    expect(page.locator("#selected-state h2")).to_have_text("State Report")
    assert json.loads(page.locator("#state-input").inner_text())["prepared"]["import_id"] == BATCH
    report = json.loads(page.locator("#state-output").inner_text())
    assert (report["status"], report["failed"]) == ("completed with errors", 2)
    failures = page.locator("#history tr.failure").all_inner_texts()
    assert sum("VendorUnavailable" in f for f in failures) == 3

    page.goto(world["url"] + executions_path(world["stigg"]))
    expect(page.locator("#graph[data-rendered='1']")).to_have_count(1)
    # the crash injected right after the paid plan was provisioned: Step Functions retried it
    assert "retried" in str(node(page, "ProvisionInStigg").get_attribute("class")).split()
    assert fill_of(page, "CancelInStripe") == COLOURS[Outcome.SUCCEEDED][0]
    assert fill_of(page, "RecordProvisionFailure") == COLOURS[Outcome.NOT_REACHED][0]
    shot(page, "03-stigg-import-execution")


def test_the_batch_page_lists_every_customer_with_its_phase_and_links_a_failure_to_its_iteration(
    world: dict[str, Any], page: Page, local_stack: LocalStack
) -> None:
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    store = DynamoDBProgressStore(local_stack.outputs["ProgressTableName"], client=local_stack.client("dynamodb"))
    expected = {p.subject: p.state.value for p in store.all_in_run(BATCH)}
    assert len(expected) == PAID_CUSTOMERS

    page.goto(world["url"] + "/batches")
    page.click(f"#batches tr[data-batch='{BATCH}'] a")
    shown = page.locator("#customers tr.customer").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.customer, r.dataset.phase]))"
    )
    assert shown == expected
    assert sorted(c for c, phase in shown.items() if phase == "failed") == [paid_key(n) for n in sorted(GONE)]
    failure = page.locator(f"#failures tr[data-customer='{paid_key(4)}']").inner_text()
    assert "VendorRejected" in failure and "sub_GoneConsole04" in failure
    shot(page, "04-batch")

    page.locator(f"#failures tr[data-customer='{paid_key(4)}'] a.handled-by").click()
    expect(page.locator("h1")).to_contain_text(name_of(world["import"]))
    assert page.url.endswith("iteration=PaidPlans%3A4")
    iterations = set(page.locator("#history tbody tr td:nth-child(4)").all_inner_texts())
    assert iterations == {"PaidPlans:4"}
    assert "VendorRejected" in page.locator("#history").inner_text()
    shot(page, "05-failed-customer-iteration")


def test_a_distributed_map_run_shows_its_items_by_status(world: dict[str, Any], page: Page, sfn: Any) -> None:
    definition = {
        "StartAt": "Items",
        "States": {
            "Items": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Fine"}],
                            "Default": "Broken",
                        },
                        "Fine": {"Type": "Pass", "End": True},
                        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "item not ok"},
                    },
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="console-distributed-map", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    items = [{"ok": True}, {"ok": False}, {"ok": True}, {"ok": True}, {"ok": False}]
    arn = executions.start(sfn, machine, {"items": items}, "console-distributed")
    executions.wait(sfn, arn)
    page.goto(world["url"] + executions_path(arn))
    expect(page.locator("#graph[data-rendered='1']")).to_have_count(1)
    cells = page.locator("#map-runs tr[data-map='Items'] td").all_inner_texts()
    assert cells[1:6] == ["distributed", "5", "3", "2", "0"]
    assert "Distributed Map" in str(node(page, "Items").text_content())
    shot(page, "06-distributed-map")


def test_an_execution_page_refreshes_while_the_execution_runs(
    world: dict[str, Any], page: Page, local_stack: LocalStack, sfn: Any
) -> None:
    """An execution waiting on the world clock (as a customer's iteration waits for its cutover): the page shows the
    Wait running, then, once the clock moves past it, the execution succeeded, without being reloaded by hand."""
    from billmig_local.clock import to_rfc3339

    definition = {
        "StartAt": "WaitForCutover",
        "States": {
            "WaitForCutover": {"Type": "Wait", "TimestampPath": "$.cutover_at", "Next": "CutOver"},
            "CutOver": {"Type": "Succeed"},
        },
    }
    machine = sfn.create_state_machine(
        name="console-live-wait", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    arn = executions.start(sfn, machine, {"cutover_at": to_rfc3339(local_stack.clock.now() + 3600)}, "console-live")
    page.goto(world["url"] + executions_path(arn))
    expect(page.locator("#execution-status")).to_have_text("RUNNING")
    expect(page.locator("#graph[data-rendered='1']")).to_have_count(1)
    # The page refreshes itself while the execution runs: the Wait shows as running once the history says so.
    expect(node(page, "WaitForCutover")).to_have_class(re.compile(r"\brunning\b"))
    shot(page, "07-live-running")
    address = page.url

    local_stack.move_clock(advance=3600)
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(page.locator("#graph[data-rendered='1'] g#state-WaitForCutover")).to_have_class("node state succeeded")
    assert page.url == address  # refreshed in place, not navigated
    assert int(page.evaluate("document.body.dataset.refreshed")) >= 1
    shot(page, "08-live-succeeded")


def executions_path(arn: str) -> str:
    from billmig_cli.console.app import execution_path

    return execution_path(arn)
