"""The Metronome migration up to the parallel run, on the local stack with a seeded book of 30 customers (awkward
ones included), driven through the CLI and checked through the official SDKs, not the project's code."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from billmig.metronome.contract import CONTRACT_ACTIONS
from billmig.metronome.customer import PREPARE_ACTIONS, actions_of
from billmig.steps import Step
from billmig_cli import metronome_migration as runner
from billmig_cli.main import app
from billmig_local.stack import LocalStack
from metronome_book import (  # noqa: F401 - the fixture
    SAMPLE_CONFIG,
    Book,
    book,
    fresh_customer,
    month_start,
    next_month,
)
from typer.testing import CliRunner

BLOCKED_PROFILES = {"past_due", "trialing", "cancel_at_period_end", "unrated_region"}


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def cli_env(book: Book) -> dict[str, str]:
    return {
        "STRIPE_API_KEY": "sk_test_local",
        "STRIPE_API_BASE": book.stack.emulators["stripe"].url,
        "METRONOME_BEARER_TOKEN": "local-metronome-token",
        "METRONOME_BASE_URL": book.stack.emulators["metronome"].url,
    }


def _cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def _parallel_run_start(book: Book) -> datetime:
    """From the world clock, not the book's seed-time config: the book is the session's, and a module before this
    one on the same stack (test_cutover.py) moves the world clock months on, past the book's cutover."""
    start: datetime = month_start(book.stack.clock.now())
    return start


def _overrides(book: Book) -> list[str]:
    start = _parallel_run_start(book)
    return [
        "--config",
        str(SAMPLE_CONFIG),
        "--parallel-run-start",
        start.isoformat(),
        "--cutover-at",
        next_month(start).isoformat(),
    ]


@pytest.fixture(scope="module")
def migrated(book: Book, cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from billmig_cli import aws_target

    aws_target.pin_local_endpoint(book.stack.endpoint, book.stack.settings.region)
    batch_file = tmp_path_factory.mktemp("batch") / "wave-1.json"
    batch_file.write_text(
        json.dumps({"batch_id": "wave-1", "customers": [{"stripe_customer_id": c.customer} for c in book.customers]})
    )
    planned = _cli(["metronome", "plan", "--batch", str(batch_file), "--json", *_overrides(book)], cli_env)
    refused = _cli(["metronome", "start", "--batch", str(batch_file), *_overrides(book)], cli_env)
    started = _cli(["metronome", "start", "--batch", str(batch_file), "--exclude-blocked", *_overrides(book)], cli_env)
    assert started.exit_code == 0, started.output
    blocked = json.loads(planned.stdout)["blocked"]
    ready = [c.customer for c in book.customers if c.customer not in blocked]
    final = runner.wait_for_parallel_run("wave-1", len(ready), timeout=300)
    again = _cli(["metronome", "start", "--batch", str(batch_file), "--exclude-blocked", *_overrides(book)], cli_env)
    yield {
        "plan": planned,
        "refused": refused,
        "started": started,
        "again": again,
        "status": final,
        "ready": ready,
        "batch_file": batch_file,
    }
    aws_target.unpin()


def test_the_plan_lists_the_awkward_customers_and_exits_non_zero(book: Book, migrated: dict[str, Any]) -> None:
    result = migrated["plan"]
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    # the awkward profiles, and customers whose unpaid invoice made them past due (no payment method); past due and
    # trialing as Stripe says now: the book is the session's, and the world clock may have moved on since its seed
    # (a paid next invoice ends past due, a trial ends)
    status = {c.customer: book.stripe.v1.subscriptions.retrieve(c.subscription).status for c in book.customers}
    by_status = {c.customer for c in book.customers if status[c.customer] in ("past_due", "trialing")}
    lasting = BLOCKED_PROFILES - {"past_due", "trialing"}
    blocked = {c.customer for c in book.customers if c.profile in lasting} | by_status
    assert set(plan["blocked"]) == blocked
    by_id = {c["stripe_customer_id"]: c for c in plan["customers"]}
    for profile in ("past_due", "trialing"):
        seeded = book.profile(profile).customer
        if status[seeded] == profile:
            assert by_id[seeded]["bucket"] == profile
    assert by_id[book.profile("unrated_region").customer]["bucket"] == "unmapped price"
    assert "anniversary billing period" in by_id[book.profile("mid_month_anchor").customer]["buckets"]
    assert "threshold billing" in by_id[book.profile("threshold").customer]["buckets"]
    creates = sum("create_contract" in c["actions"] for c in plan["customers"] if c["can_migrate"])
    assert plan["calls"].get("metronome POST /v1/contracts/create", 0) == creates
    assert plan["duration_seconds"]["bound"] > 0


def _batch_file(path: Path, batch_id: str, customers: list[str]) -> Path:
    path.write_text(json.dumps({"batch_id": batch_id, "customers": [{"stripe_customer_id": c} for c in customers]}))
    return path


def test_the_plan_of_a_batch_of_only_ready_customers_exits_zero_and_writes_nothing(
    book: Book, migrated: dict[str, Any], cli_env: dict[str, str], tmp_path: Path, local_stack: LocalStack
) -> None:
    before = _metronome_writes(local_stack)
    ready = fresh_customer(book, f"plan-ready-{uuid.uuid4().hex[:6]}", first_of_month=True)
    batch = _batch_file(tmp_path / "ready.json", "ready-only", [ready])
    result = _cli(["metronome", "plan", "--batch", str(batch), "--json", *_overrides(book)], cli_env)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    (customer,) = plan["customers"]
    assert (customer["stripe_customer_id"], customer["bucket"], customer["can_migrate"]) == (ready, "ready", True)
    assert customer["actions"] == ["create_customer", "set_unbillable", "create_contract"]
    assert plan["totals"] == {"ready": 1} and plan["blocked"] == {}
    assert _metronome_writes(local_stack) == before
    human = _cli(["metronome", "plan", "--batch", str(batch), *_overrides(book)], cli_env)
    assert human.exit_code == 0 and "cannot migrate" not in human.output and "totals: ready 1" in human.output


def test_the_plan_of_the_migrated_customers_finds_them_migrated_with_nothing_left_to_do(
    book: Book, migrated: dict[str, Any], cli_env: dict[str, str], tmp_path: Path
) -> None:
    batch = _batch_file(tmp_path / "again.json", "wave-1", migrated["ready"])
    result = _cli(["metronome", "plan", "--batch", str(batch), "--json", *_overrides(book)], cli_env)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert {c["stripe_customer_id"] for c in plan["customers"]} == set(migrated["ready"])
    for customer in plan["customers"]:
        assert customer["bucket"] == "already or partly migrated", customer
        assert customer["can_migrate"] and customer["actions"] == [], customer
    assert plan["totals"] == {"already or partly migrated": len(migrated["ready"])}
    assert not any(endpoint.startswith("metronome POST") and "create" in endpoint for endpoint in plan["calls"])


def test_the_plan_buckets_a_customer_with_no_internal_id_and_one_partly_migrated(
    book: Book, migrated: dict[str, Any], cli_env: dict[str, str], tmp_path: Path
) -> None:
    no_id = book.stripe.v1.customers.create(params={"name": "plan: no internal id"}).id
    book.stripe.v1.subscriptions.create(
        params={"customer": no_id, "items": [{"price": p} for p in _rated_prices(book)]}
    )
    alias = f"plan-partly-{uuid.uuid4().hex[:6]}"
    partly = fresh_customer(book, alias, first_of_month=True)
    book.metronome.v1.customers.create(name="made by an earlier tool", ingest_aliases=[alias])
    batch = _batch_file(tmp_path / "buckets.json", "buckets", [no_id, partly])
    result = _cli(["metronome", "plan", "--batch", str(batch), "--json", *_overrides(book)], cli_env)
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    by_id = {c["stripe_customer_id"]: c for c in plan["customers"]}
    assert by_id[no_id]["bucket"] == "no internal id" and not by_id[no_id]["can_migrate"]
    assert by_id[no_id]["internal_id"] is None
    assert list(plan["blocked"]) == [no_id]
    assert plan["blocked"][no_id].startswith("no metadata['internal_customer_id'] on the Stripe customer")
    assert by_id[partly]["bucket"] == "already or partly migrated" and by_id[partly]["can_migrate"]
    assert by_id[partly]["actions"] == ["add_billing_provider_configuration", "set_unbillable", "create_contract"]
    assert plan["totals"] == {"no internal id": 1, "already or partly migrated": 1}


def test_plan_all_active_lists_every_customer_with_a_live_subscription(
    book: Book, migrated: dict[str, Any], cli_env: dict[str, str]
) -> None:
    result = _cli(["metronome", "plan", "--all-active", "--json", *_overrides(book)], cli_env)
    planned = [c["stripe_customer_id"] for c in json.loads(result.stdout)["customers"]]
    subscriptions = book.stripe.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter()
    live = {s.customer for s in subscriptions if s.status in ("active", "trialing", "past_due")}
    assert len(planned) == len(set(planned))
    assert set(planned) == live
    seeded_live = {c.customer for c in book.customers if c.customer in live}
    assert seeded_live and seeded_live <= set(planned)


def test_status_through_the_cli_counts_every_step_and_phase(migrated: dict[str, Any], cli_env: dict[str, str]) -> None:
    ready = len(migrated["ready"])
    result = _cli(["metronome", "status", "--batch", "wave-1"], cli_env)
    assert result.exit_code == 0, result.output
    rows = _status_rows(result.output)
    for step in (Step.METRONOME_SNAPSHOT, Step.METRONOME_PREPARE, Step.METRONOME_CONTRACT, Step.METRONOME_PARALLEL_RUN):
        assert rows[str(step)] == [ready, 0, 0, 0], step
    assert rows[str(Step.METRONOME_CUTOVER_GATE)] == [0, 0, 0, ready]
    assert f"phases: parallel_run {ready}" in result.output
    assert "execution: wave-1 RUNNING" in result.output
    by_file = _cli(["metronome", "status", "--batch", str(migrated["batch_file"])], cli_env)
    assert _status_rows(by_file.output) == rows


def test_status_watch_returns_once_every_customer_waits_for_the_cutover(
    migrated: dict[str, Any], cli_env: dict[str, str]
) -> None:
    answer: list[Any] = []
    watching = threading.Thread(
        target=lambda: answer.append(_cli(["metronome", "status", "--batch", "wave-1", "--watch"], cli_env)),
        daemon=True,
    )
    watching.start()
    watching.join(timeout=60)  # a guard, not a measurement: --watch must not follow a waiting execution forever
    assert not watching.is_alive(), "status --watch kept following a batch whose customers all wait for the cutover"
    (result,) = answer
    assert result.exit_code == 0, result.output
    ready = len(migrated["ready"])
    assert f"{ready}/{ready}" in result.output and "parallel run begun" in result.output
    assert _status_rows(result.output)[str(Step.METRONOME_PARALLEL_RUN)] == [ready, 0, 0, 0]


def test_strategy_hard_on_the_cli_overrides_the_config(
    book: Book, migrated: dict[str, Any], cli_env: dict[str, str], tmp_path: Path, sfn: Any
) -> None:
    from billmig.metronome.storage import MigrationRun, run_key

    assert json.loads(SAMPLE_CONFIG.read_text())["strategy"] == "parallel"
    alias = f"hard-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias, first_of_month=True)
    batch_id = f"hard-{uuid.uuid4().hex[:6]}"
    batch = _batch_file(tmp_path / "hard.json", batch_id, [customer])
    started = _cli(["metronome", "start", "--batch", str(batch), "--strategy", "hard", *_overrides(book)], cli_env)
    assert started.exit_code == 0, started.output
    machine = book.stack.outputs["MetronomeMigrationStateMachineArn"]
    (arn,) = [
        e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == batch_id
    ]
    try:
        run = MigrationRun.model_validate_json(book.storage.read_text(run_key(batch_id)))
        assert run.config.strategy == "hard"
        assert runner.wait_for_parallel_run(batch_id, 1, timeout=120).failures == {}
        (found,) = list(book.metronome.v1.customers.list(ingest_alias=alias))
        (contract,) = list(book.metronome.v2.contracts.list(customer_id=found.id))
        schedule = contract.usage_statement_schedule.to_dict()
        # a hard cutover has no parallel run: Metronome invoices from the cutover, not the parallel-run start
        assert _utc(schedule["invoice_generation_starting_at"]) == next_month(_parallel_run_start(book))
    finally:
        sfn.stop_execution(executionArn=arn)


def _status_rows(output: str) -> dict[str, list[int]]:
    """The status table's rows: step -> [succeeded, running, failed, pending]."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃|").split("│")]
        if len(cells) == 5 and cells[0].startswith("metronome.") and all(c.isdigit() for c in cells[1:]):
            rows[cells[0]] = [int(c) for c in cells[1:]]
    return rows


def test_start_refuses_blocked_customers_unless_excluded(migrated: dict[str, Any], book: Book) -> None:
    from billmig.metronome.storage import MigrationRun, run_key

    assert migrated["refused"].exit_code == 2
    assert "--exclude-blocked" in migrated["refused"].output
    assert "excluded" in migrated["started"].output
    # each excluded customer recorded in the run document with the plan's reason; only the others were started
    blocked = json.loads(migrated["plan"].stdout)["blocked"]
    assert blocked
    run = MigrationRun.model_validate_json(book.storage.read_text(run_key("wave-1")))
    assert run.excluded == blocked
    assert not set(blocked) & set(migrated["ready"])
    assert {c.customer for c in book.customers} == set(blocked) | set(migrated["ready"])
    assert "  console http://127.0.0.1:" in migrated["started"].output  # the execution's page in the local console


def test_starting_the_batch_again_returns_the_running_execution(migrated: dict[str, Any], book: Book) -> None:
    assert "already running" in migrated["again"].output
    status = runner.status("wave-1")
    assert status.steps[Step.METRONOME_CONTRACT]["succeeded"] == len(migrated["ready"])
    assert "WaitForCutover" not in (status.execution or "")  # named by batch; the state is checked below
    assert status.execution is not None and status.execution.endswith("RUNNING")


def test_the_steps_read_the_run_document_of_their_own_execution(book: Book, migrated: dict[str, Any]) -> None:
    """The execution passes a key named by the run document's content (the latest stays at run.json for the
    commands): a warm container reads each version once, and a later `start` with another config cannot change
    what a running execution's steps read."""
    from billmig.metronome.storage import MigrationRun, read_run, run_key

    sfn = book.stack.client("stepfunctions")
    machine = book.stack.outputs["MetronomeMigrationStateMachineArn"]
    arn = next(
        e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == "wave-1"
    )
    passed = json.loads(sfn.describe_execution(executionArn=arn)["input"])["run_key"]
    assert passed.startswith("metronome/wave-1/runs/") and passed != run_key("wave-1")
    latest = book.storage.read_text(run_key("wave-1"))
    assert book.storage.read_text(passed) == latest
    first = read_run(book.storage, passed)
    assert first == MigrationRun.model_validate_json(latest)
    s3 = book.stack.client("s3")
    s3.delete_object(Bucket=book.stack.outputs["ImportBucketName"], Key=passed)
    assert read_run(book.storage, passed) is first  # a version is read once, then kept
    s3.put_object(Bucket=book.stack.outputs["ImportBucketName"], Key=passed, Body=latest.encode())


def test_each_customer_is_in_metronome_once_with_alias_stripe_configuration_and_unbillable(
    book: Book, migrated: dict[str, Any]
) -> None:
    m = book.metronome
    for seeded in (c for c in book.customers if c.customer in migrated["ready"]):
        found = [c for c in m.v1.customers.list(ingest_alias=seeded.internal_customer_id)]
        assert len(found) == 1, seeded.customer
        customer = m.v1.customers.retrieve(customer_id=found[0].id).data
        assert customer.ingest_aliases == [seeded.internal_customer_id]
        assert customer.current_billable_status is not None
        assert customer.current_billable_status.value == "unbillable"
        configs = m.v1.customers.retrieve_billing_configurations(customer_id=customer.id).data
        assert [(c.billing_provider, c.configuration["stripe_customer_id"]) for c in configs] == [
            ("stripe", seeded.customer)
        ]
    for seeded in (c for c in book.customers if c.customer not in migrated["ready"]):
        assert list(m.v1.customers.list(ingest_alias=seeded.internal_customer_id)) == []


def test_each_contract_has_the_dates_schedule_and_credits_of_stripe(book: Book, migrated: dict[str, Any]) -> None:
    m, s = book.metronome, book.stripe.v1
    prs = _parallel_run_start(book)
    moved = checked_invoices = 0
    for seeded in (c for c in book.customers if c.customer in migrated["ready"]):
        (customer,) = list(m.v1.customers.list(ingest_alias=seeded.internal_customer_id))
        contracts = list(m.v2.contracts.list(customer_id=customer.id))
        assert len(contracts) == 1
        contract = m.v2.contracts.retrieve(customer_id=customer.id, contract_id=contracts[0].id).data
        subscription = s.subscriptions.retrieve(seeded.subscription)
        start = datetime.fromtimestamp(subscription.start_date, UTC).replace(hour=0, minute=0, second=0)
        assert _utc(contract.starting_at) == start
        schedule = contract.usage_statement_schedule.to_dict()
        assert _utc(schedule["invoice_generation_starting_at"]) == prs
        anchor = datetime.fromtimestamp(subscription.billing_cycle_anchor, UTC)
        if (anchor.day, anchor.hour, anchor.minute, anchor.second) == (1, 0, 0, 0):
            assert schedule["day"] == "FIRST_OF_MONTH"
        else:
            assert schedule["day"] == "CUSTOM_DATE" and _utc(schedule["billing_anchor_date"]) == anchor
        for invoice in m.v1.customers.invoices.list(customer_id=customer.id):
            assert _utc(invoice.start_timestamp) >= prs, invoice.id
        checked_invoices += 1
        balances = {c.name: ("commit", c) for c in contract.commits} | {
            c.name: ("credit", c) for c in contract.credits or []
        }
        if subscription.billing_thresholds is not None:  # decisions.md (c): moved at the cutover instead
            assert balances == {}, seeded.customer
            continue
        for grant in s.billing.credit_grants.list(params={"customer": seeded.customer}).auto_paging_iter():
            summary = s.billing.credit_balance_summary.retrieve(
                params={"customer": seeded.customer, "filter": {"type": "credit_grant", "credit_grant": grant.id}}
            )
            remaining = sum(b.available_balance.monetary.value for b in summary.balances)
            if remaining == 0 or grant.voided_at or (grant.expires_at and grant.expires_at <= prs.timestamp()):
                assert grant.id not in balances
                continue
            kind, balance = balances[grant.id]
            assert sum(i.amount for i in balance.access_schedule.schedule_items) == remaining
            assert balance.priority == grant.priority + 1
            if grant.category == "paid":
                assert kind == "commit" and balance.type == "PREPAID"
                assert balance.invoice_schedule is not None and balance.invoice_schedule.do_not_invoice is True
            else:
                assert kind == "credit"
            moved += 1
    assert moved > 0
    assert checked_invoices == len(migrated["ready"])  # threshold customers included


def test_the_plan_predicted_what_the_run_did(book: Book, migrated: dict[str, Any]) -> None:
    plan = json.loads(migrated["plan"].stdout)
    for customer in plan["customers"]:
        if not customer["can_migrate"]:
            continue
        progress = book.store.get("wave-1", customer["stripe_customer_id"])
        assert progress is not None and progress.phase == "parallel_run"
        done = actions_of(progress.steps[Step.METRONOME_PREPARE].vendor_ids, PREPARE_ACTIONS)
        done += actions_of(progress.steps[Step.METRONOME_CONTRACT].vendor_ids, CONTRACT_ACTIONS)
        assert done == customer["actions"], customer["stripe_customer_id"]


def test_bad_config_or_batch_fails_before_any_write(
    book: Book, cli_env: dict[str, str], tmp_path: Path, local_stack: LocalStack
) -> None:
    before = _metronome_writes(local_stack)
    config = json.loads(SAMPLE_CONFIG.read_text())
    config["prices"][0]["stripe_price"] = "no_such_price"
    config["parallel_run_start"] = "2026-12-02T00:00:00Z"
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps(config))
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"batch_id": "bad", "customers": [{"stripe_customer_id": book.customers[0].customer}]}))
    result = _cli(["metronome", "start", "--config", str(bad_config), "--batch", str(batch)], cli_env)
    assert result.exit_code == 2
    assert f"{bad_config}: parallel_run_start" in result.output and "month boundary" in result.output
    config["parallel_run_start"] = _parallel_run_start(book).isoformat()
    config["cutover_at"] = next_month(_parallel_run_start(book)).isoformat()  # the sample's date may be behind
    bad_config.write_text(json.dumps(config))
    result = _cli(["metronome", "start", "--config", str(bad_config), "--batch", str(batch)], cli_env)
    assert "prices.0.stripe_price: no Stripe price 'no_such_price'" in result.output
    not_json = tmp_path / "batch.txt.json"
    not_json.write_text("{customers: [")
    result = _cli(["metronome", "plan", "--batch", str(not_json), *_overrides(book)], cli_env)
    assert result.exit_code == 2 and f"{not_json}: not JSON" in result.output
    missing = tmp_path / "missing-id.json"
    no_id = book.stripe.v1.customers.create(params={"name": "no internal id"}).id
    book.stripe.v1.subscriptions.create(
        params={"customer": no_id, "items": [{"price": p} for p in _rated_prices(book)]}
    )
    missing.write_text(json.dumps({"batch_id": "missing", "customers": [{"stripe_customer_id": no_id}]}))
    result = _cli(["metronome", "start", "--batch", str(missing), *_overrides(book)], cli_env)
    assert result.exit_code == 2
    assert f"{no_id}: no metadata['internal_customer_id'] on the Stripe customer" in result.output
    assert _metronome_writes(local_stack) == before


_WRITE_PATHS = ("/v1/customers", "/setBillableStatus", "/v1/contracts/create", "/v1/setCustomerBilling")


def _metronome_writes(stack: LocalStack) -> int:
    return sum(
        1
        for r in list(stack.emulators["metronome"].control.log)
        if r.method == "POST" and any(r.path.endswith(p) or p in r.path for p in _WRITE_PATHS)
    )


def _rated_prices(book: Book) -> list[str]:
    keys = {"api_calls", "compute_minutes", "storage_gb_us_east"}
    return [p.id for p in book.stripe.v1.prices.list(params={"limit": 100}).data if p.lookup_key in keys]
