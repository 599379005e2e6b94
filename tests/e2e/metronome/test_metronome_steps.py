"""Snapshot, prepare, contract and parallel run for single customers, in-process against the local stack: a crash
after every vendor write resumes to the same end state with nothing duplicated; partly migrated customers complete."""

from __future__ import annotations

import ast
import copy
import inspect
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from billmig.metronome import ports
from billmig.metronome.errors import CreditReconciliationFailed, CustomerBlocked
from billmig.metronome.ports import WRITE_METHODS
from billmig.progress import StepStatus
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


def written_by_the_steps() -> list[str]:
    """The crash points, from the code: every write method of the port that prepare or contract calls on its target
    (a new write in either step is a new point; `test_every_write_of_a_clean_run_is_a_crash_point` checks the
    writes the steps make through anything else)."""
    from billmig.metronome import contract, customer

    called = set()
    for module in (customer, contract):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "target"
            ):
                called.add(node.func.attr)
    return sorted(called & set(WRITE_METHODS))


def new_customer(book: Book, alias: str) -> str:
    return str(fresh_customer(book, alias))


def partly_migrated(book: Book, alias: str) -> str:
    """Found in Metronome by its alias, made by an earlier tool without its Stripe configuration or a contract."""
    customer = fresh_customer(book, alias)
    book.metronome.v1.customers.create(name="made by hand", ingest_aliases=[alias])
    return str(customer)


SCENARIOS: dict[str, Callable[[Book, str], str]] = {"new": new_customer, "partly migrated": partly_migrated}
"""Between them they reach every write the steps make (checked below); each one's end state is the same."""


def _scenario(book: Book, name: str, tag: str) -> tuple[str, str, str]:
    alias = f"{tag}-{uuid.uuid4().hex[:6]}"
    customer = SCENARIOS[name](book, alias)
    batch = f"{tag}-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    return alias, customer, batch


@pytest.fixture(scope="module")
def clean_writes(book: Book) -> dict[str, list[str]]:
    """The writes each scenario's clean run makes, in order, recorded at the port."""
    writes = {}
    for name in SCENARIOS:
        _, customer, batch = _scenario(book, name, "record")
        recording = CrashAfter(book.target())
        book.run_steps(batch, customer, recording)
        writes[name] = recording.writes
    return writes


def test_every_write_of_a_clean_run_is_a_crash_point(clean_writes: dict[str, list[str]]) -> None:
    made = {w for writes in clean_writes.values() for w in writes}
    assert made == set(written_by_the_steps())
    assert clean_writes["new"] == ["create_customer", "set_billable_status", "create_contract"]
    assert clean_writes["partly migrated"] == ["add_stripe_configuration", "set_billable_status", "create_contract"]


def _assert_migrated_once(book: Book, alias: str, batch: str, customer: str) -> None:
    state = end_state(book, alias)
    assert state["configs"] == [("stripe", customer)]
    assert state["contracts"] == 1
    assert [(t, a) for _, t, a in state["commits"]] == [("PREPAID", 12345)]
    assert [a for _, a in state["credits"]] == [2500]
    assert state["billable"] == "unbillable"
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase == "parallel_run"


@pytest.mark.parametrize("method", written_by_the_steps())
def test_a_crash_after_each_write_then_a_resume_leaves_one_of_everything(
    book: Book, clean_writes: dict[str, list[str]], method: str
) -> None:
    """After every occurrence of the write, in every scenario whose clean run makes it: the crashed run made the
    clean run's writes up to it, and the resume makes exactly the rest."""
    points = [
        (name, index) for name, writes in clean_writes.items() for index, write in enumerate(writes) if write == method
    ]
    assert points, f"no scenario's clean run calls {method}: add one to SCENARIOS"
    for name, index in points:
        clean = clean_writes[name]
        occurrence = clean[: index + 1].count(method)
        alias, customer, batch = _scenario(book, name, "crash")
        crashing = CrashAfter(book.target(), method, occurrence)
        with pytest.raises(SimulatedCrash):
            book.run_steps(batch, customer, crashing)
        assert crashing.writes == clean[: index + 1], name
        resuming = CrashAfter(book.target())
        results = book.run_steps(batch, customer, resuming)  # the resume: same execution, same runner
        assert resuming.writes == clean[index + 1 :], (name, method, occurrence)
        assert [r.step for r in results] == [
            Step.METRONOME_SNAPSHOT,
            Step.METRONOME_PREPARE,
            Step.METRONOME_CONTRACT,
            Step.METRONOME_PARALLEL_RUN,
            Step.METRONOME_BACKFILL_USAGE,
        ]
        _assert_migrated_once(book, alias, batch, customer)


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


class ShortChangingTarget:
    """Creates each contract with its first commit one cent short of what the step asked for, as a Metronome that
    rounded or dropped part of a balance would: the step must see it in what Metronome returns."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_contract(self, terms: dict[str, Any]) -> str:
        changed = copy.deepcopy(terms)
        changed["commits"][0]["access_schedule"]["schedule_items"][0]["amount"] -= 1
        return str(self._inner.create_contract(changed))


def test_a_commit_that_metronome_holds_short_of_stripes_balance_fails_the_contract_step(book: Book) -> None:
    alias = f"short-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias)
    batch = f"short-{uuid.uuid4().hex[:8]}"
    book.start_run(batch)
    with pytest.raises(CreditReconciliationFailed, match=r"Metronome 12344 cents, Stripe remaining 12345") as caught:
        book.run_steps(batch, customer, ShortChangingTarget(book.target()))
    (grant,) = [
        g.id for g in book.stripe.v1.billing.credit_grants.list(params={"customer": customer}) if g.category == "paid"
    ]
    assert str(caught.value).startswith(f"{customer} contract ") and f"{grant}: Metronome 12344" in str(caught.value)
    assert end_state(book, alias)["commits"][0][1:] == ("PREPAID", 12344)  # what Metronome holds, read by the SDK
    progress = book.store.get(batch, customer)
    assert progress is not None and progress.phase != "parallel_run"
    record = progress.steps[Step.METRONOME_CONTRACT]
    assert record.status is StepStatus.FAILED
    assert record.last_error is not None and record.last_error.type == "CreditReconciliationFailed"
