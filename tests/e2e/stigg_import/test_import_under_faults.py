"""The Stigg import under a storm of 429s and 503s on every Stigg operation: retried Tasks continue from their chunk's
progress, every record lands exactly once, and a record Stigg refuses for good is reported failed with its field while
the rest are imported; the CLI says "completed with errors", names the record and how to resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billmig.adapters.stigg_graphql import StiggGraphQLTarget
from billmig_cli.main import app
from billmig_local.emulators.control_plane import FaultRule
from billmig_local.stack import LocalStack
from billmig_local.stigg_book import generated_book
from import_world import Write
from stigg import Stigg
from stigg.client import StiggClient
from typer.testing import CliRunner

CUSTOMERS = 200


@pytest.fixture()
def storm(local_stack: LocalStack) -> Iterator[Any]:
    """20% of Stigg requests answered 429 or 503 (before the emulator runs them), whatever the operation. The import
    makes about ten calls, so the draws are seeded to reach the first ones (the customer survey and import)."""
    control = local_stack.emulators["stigg"].control
    control.seed_faults(123)
    control.add_fault(FaultRule(path=r"^/graphql", status=429, rate=0.10, message="Too many requests"))
    control.add_fault(FaultRule(path=r"^/graphql", status=503, rate=0.112, message="Service unavailable"))
    yield control
    control.clear_faults()


def test_a_storm_of_429_and_503_ends_with_every_record_in_stigg_exactly_once(
    aws: LocalStack, stigg: StiggClient, write: Write, tmp_path: Path, storm: Any
) -> None:
    book = generated_book(CUSTOMERS)
    book["customers"] = [{**c, "customerId": c["customerId"].replace("book", "storm")} for c in book["customers"]]
    for kind in ("free", "custom", "usages"):
        book[kind] = [{**r, "customerId": r["customerId"].replace("book", "storm")} for r in book[kind]]
    # Stigg refuses this one row for good (its import task names the row's field); billmig's checks cannot know.
    bad = book["free"][3]
    bad.update(startDate="2026-03-01T00:00:00Z", endDate="2026-02-01T00:00:00Z")
    files = [
        "--customers-file", str(write("storm-customers.json", "customers", book["customers"])),
        "--subscriptions-file", str(write("storm-free.json", "subscriptions", book["free"])),
        "--subscriptions-file", str(write("storm-custom.json", "subscriptions", book["custom"])),
        "--usage-file", str(write("storm-usage.json", "usages", book["usages"])),
    ]  # fmt: skip
    storm.log.clear()

    done = CliRunner().invoke(
        app, ["stigg", "import", *files, "--import-id", "storm-200", "--report-dir", str(tmp_path / "reports")]
    )
    log = list(storm.log)
    storm.clear_faults()

    assert done.exit_code == 1, done.output
    assert "completed with errors: 1 failed (1 subscriptions)" in done.output
    assert f"subscriptions {bad['customerId']}/-/plan-free:" in done.output
    assert "endDate must be after startDate" in done.output
    assert "resume: billmig stigg import <the same files and flags> --import-id storm-200" in done.output
    injected = [e for e in log if e.injected]
    assert {e.status for e in injected} == {429, 503}, "the storm did not reach the import"

    report = json.loads((tmp_path / "reports" / "storm-200.json").read_text())
    assert report["status"] == "completed with errors"
    assert report["totals"]["customers"] == {"created": CUSTOMERS, "updated": 0, "skipped": 0, "failed": 0}
    assert report["totals"]["subscriptions"] == {"created": CUSTOMERS - 1, "updated": 0, "skipped": 0, "failed": 1}
    assert report["totals"]["usage"] == {"created": 0, "updated": 2 * CUSTOMERS, "skipped": 0, "failed": 0}

    # Stigg, through the SDK: every customer once, one live subscription each (none for the refused row), every
    # usage value once.
    target = StiggGraphQLTarget(stigg)
    ids = [c["customerId"] for c in book["customers"]]
    assert target.existing_customer_ids(ids) == set(ids)
    live = target.live_subscriptions_of(ids)
    expected_plan = {r["customerId"]: r["planId"] for r in [*book["free"], *book["custom"]]}
    assert {cid: [s.plan_id for s in subs] for cid, subs in live.items()} == {
        cid: [] if cid == bad["customerId"] else [expected_plan[cid]] for cid in ids
    }
    for usage in book["usages"]:
        history = stigg.request(
            Stigg.query.get_usage_history,
            {
                "usageHistoryInput": {
                    "customerRefId": usage["customerId"],
                    "featureRefId": usage["featureId"],
                    "startDate": "2020-01-01T00:00:00Z",
                }
            },
        ).usage_history
        assert [p.value for p in history.usage_measurements] == [usage["usage"]], usage
    applied = [e for e in log if not e.injected and e.status == 200]
    assert sum("importCustomersBulk" in e.body for e in applied) == 1
    assert sum("importSubscriptionsBulk" in e.body for e in applied) == 1
    assert sum("reportUsageBulk" in e.body for e in applied) == 2 * CUSTOMERS // 100
    assert not [e for e in log if e.status == 429 and not e.injected], "the import itself caused a 429"
