"""Snapshot, prepare, contract and parallel run for single customers, in-process against the local stack: a crash
after every vendor write resumes to the same end state with nothing duplicated; partly migrated customers complete."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest
from billmig.metronome import ports
from billmig.metronome.errors import CustomerBlocked
from billmig.metronome.ports import WRITE_METHODS
from billmig.steps import Step
from metronome_book import Book, CrashAfter, SimulatedCrash, book, fresh_customer  # noqa: F401 - the fixture


def test_the_write_points_are_every_writing_method_of_the_port() -> None:
    methods = {n for n, _ in inspect.getmembers(ports.MetronomeTarget, inspect.isfunction) if not n.startswith("_")}
    writing = {n for n in methods if n.split("_")[0] in ("create", "add", "set", "update", "archive", "edit", "end")}
    assert writing == set(WRITE_METHODS)


def end_state(book: Book, alias: str) -> dict[str, Any]:
    """What Metronome holds for an alias, read through the official SDK."""
    m = book.metronome
    customers = [c for c in m.v1.customers.list(ingest_alias=alias) if alias in c.ingest_aliases]
    assert len(customers) == 1, f"{len(customers)} Metronome customers have alias {alias}"
    (customer,) = customers
    configs = m.v1.customers.retrieve_billing_configurations(customer_id=customer.id).data
    contracts = list(m.v2.contracts.list(customer_id=customer.id))
    status = m.v1.customers.retrieve(customer_id=customer.id).data.current_billable_status
    return {
        "configs": [(c.billing_provider, c.configuration.get("stripe_customer_id")) for c in configs],
        "contracts": len(contracts),
        "commits": sorted((c.name, c.type, c.access_schedule.schedule_items[0].amount) for c in contracts[0].commits)
        if contracts
        else [],
        "credits": sorted((c.name, c.access_schedule.schedule_items[0].amount) for c in contracts[0].credits or [])
        if contracts
        else [],
        "billable": status.value if status else None,
    }


def _points() -> list[tuple[str, int]]:
    return [("create_customer", 1), ("set_billable_status", 1), ("create_contract", 1)]


@pytest.mark.parametrize(("method", "occurrence"), _points())
def test_a_crash_after_each_write_then_a_resume_leaves_one_of_everything(
    book: Book, method: str, occurrence: int
) -> None:
    alias = f"crash-{method}-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias)
    batch = f"crash-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    crashing = CrashAfter(book.target(), method, occurrence)
    with pytest.raises(SimulatedCrash):
        book.run_steps(batch, customer, crashing)
    assert method in crashing.writes
    results = book.run_steps(batch, customer)  # the resume: same execution, same runner
    assert [r.step for r in results] == [
        Step.METRONOME_SNAPSHOT,
        Step.METRONOME_PREPARE,
        Step.METRONOME_CONTRACT,
        Step.METRONOME_PARALLEL_RUN,
        Step.METRONOME_BACKFILL_USAGE,
    ]
    state = end_state(book, alias)
    assert state["configs"] == [("stripe", customer)]
    assert state["contracts"] == 1
    assert [(t, a) for _, t, a in state["commits"]] == [("PREPAID", 12345)]
    assert [a for _, a in state["credits"]] == [2500]
    assert state["billable"] == "unbillable"
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "parallel_run"


def test_a_clean_run_makes_exactly_the_expected_writes(book: Book) -> None:
    alias = f"clean-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias)
    batch = f"clean-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    recording = CrashAfter(book.target())
    book.run_steps(batch, customer, recording)
    assert recording.writes == ["create_customer", "set_billable_status", "create_contract"]
    again = CrashAfter(book.target())
    book.run_steps(batch, customer, again)  # every step already done: no vendor call at all
    assert again.writes == []


def test_a_partly_migrated_customer_without_configuration_or_contract_is_completed(book: Book) -> None:
    alias = f"partly-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias)
    book.metronome.v1.customers.create(name="made by hand", ingest_aliases=[alias])
    batch = f"partly-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    crashing = CrashAfter(book.target(), "add_stripe_configuration")
    with pytest.raises(SimulatedCrash):
        book.run_steps(batch, customer, crashing)
    recording = CrashAfter(book.target())
    book.run_steps(batch, customer, recording)
    assert recording.writes == ["set_billable_status", "create_contract"]
    state = end_state(book, alias)
    assert state["configs"] == [("stripe", customer)]
    assert state["contracts"] == 1
    assert state["billable"] == "unbillable"


def test_a_partly_migrated_customer_with_its_configuration_gets_its_contract(book: Book) -> None:
    alias = f"partly-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias)
    book.metronome.v1.customers.create(
        name="made by an earlier tool",
        ingest_aliases=[alias],
        customer_billing_provider_configurations=[
            {
                "billing_provider": "stripe",
                "delivery_method": "direct_to_billing_provider",
                "configuration": {"stripe_customer_id": customer},
            }
        ],
    )
    batch = f"partly-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    recording = CrashAfter(book.target())
    results = book.run_steps(batch, customer, recording)
    assert recording.writes == ["set_billable_status", "create_contract"]
    assert results[1].outcome == "found"
    assert end_state(book, alias)["contracts"] == 1


def test_a_blocked_customer_fails_at_the_snapshot_before_any_write(book: Book) -> None:
    # Blocked for a reason the world clock cannot change: the session's book is shared, and a module before this
    # one on the same stack (test_cutover.py) moves the clock months on, past the seeded past_due customer's next
    # (paid, nothing used) invoice and the trialing one's trial end.
    unrated = book.profile("unrated_region")
    batch = f"blocked-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    recording = CrashAfter(book.target())
    with pytest.raises(CustomerBlocked, match="no mapping for"):
        book.run_steps(batch, unrated.customer, recording)
    assert recording.writes == []
