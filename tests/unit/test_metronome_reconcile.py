"""The contract step's credit reconciliation (`billmig.metronome.contract.reconcile`): every grant moved, read back
from Metronome, must be a commit or credit of Stripe's remaining balance to the cent, with its priority and expiry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Literal

from billmig.metronome.contract import reconcile
from billmig.metronome.contract_terms import GrantMove, contract_terms, grant_moves
from billmig.metronome.ports import ContractBalance, MetronomeContract
from billmig.metronome.resolution import ResolvedConfig, ResolvedPrice
from billmig.metronome.snapshot import CustomerSnapshot
from billmig.stripe_source.views import StripeCreditGrant, StripeCustomer, StripeItem, StripeSubscription
from suite import credit_grant

CONFIG = ResolvedConfig(
    migration_id="m",
    rate_card_id="rc",
    internal_id_metadata_key="internal_customer_id",
    commit_product_id="p-commit",
    credit_product_id="p-credit",
    prices=[ResolvedPrice(stripe_price="api_calls", product_id="p-api")],
    parallel_run_start=datetime(2026, 12, 1, tzinfo=UTC),
    cutover_at=datetime(2027, 1, 1, tzinfo=UTC),
    strategy="parallel",
    auto_recharge={"threshold_amount": 2000, "recharge_to_amount": 5000},  # type: ignore[arg-type]
    concurrency=10,
)


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


def _grant(
    gid: str, category: Literal["paid", "promotional"], remaining: int, priority: int, expires_at: int | None = None
) -> StripeCreditGrant:
    made: StripeCreditGrant = credit_grant(gid, category, remaining=remaining, priority=priority, expires_at=expires_at)
    return made


def _snapshot() -> CustomerSnapshot:
    item = StripeItem("price_api", "api_calls", 0, "month", "mtr_api", _ts(2026, 11, 1), _ts(2026, 12, 1))
    subscription = StripeSubscription(
        id="sub_1", status="active", start_date=_ts(2026, 9, 1), items=(item,), billing_cycle_anchor=_ts(2026, 10, 1)
    )
    customer = StripeCustomer("cus_1", None, "Acme", {"internal_customer_id": "acct_1"}, None, (subscription,))
    grants = [
        _grant("cg_paid", "paid", 4321, 50, expires_at=_ts(2027, 3, 1, 10, 15)),
        _grant("cg_promo", "promotional", 500, 10),
        _grant("cg_used", "paid", 0, 20),
    ]
    return CustomerSnapshot(customer=customer, grants=grants, taken_at=datetime(2026, 11, 20, tzinfo=UTC))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _read_back(terms: dict[str, Any]) -> MetronomeContract:
    """The contract as Metronome returns what `terms` created: each commit or credit as the adapter reads it."""

    def balance(index: int, item: dict[str, Any], kind: str) -> ContractBalance:
        schedule = item["access_schedule"]["schedule_items"]
        invoice = item.get("invoice_schedule")
        return ContractBalance(
            id=f"{kind.lower()}-{index}",
            kind=kind,
            name=item["name"],
            product_id=item["product_id"],
            amount=sum(s["amount"] for s in schedule),
            priority=float(item["priority"]),
            starting_at=_time(schedule[0]["starting_at"]),
            ending_before=_time(schedule[-1]["ending_before"]),
            applicable_product_ids=tuple(item.get("applicable_product_ids", ())),
            invoiced=None if invoice is None else not invoice["do_not_invoice"],
        )

    balances = [balance(i, c, c["type"]) for i, c in enumerate(terms["commits"])]
    balances += [balance(i, c, "CREDIT") for i, c in enumerate(terms["credits"])]
    return MetronomeContract(
        id="contract-1",
        customer_id=terms["customer_id"],
        uniqueness_key=terms["uniqueness_key"],
        starting_at=_time(terms["starting_at"]),
        rate_card_id=terms["rate_card_id"],
        statement_schedule=terms["usage_statement_schedule"],
        billing_provider_configuration_id="bpc",
        balances=tuple(balances),
    )


def _moves_and_contract() -> tuple[list[GrantMove], MetronomeContract]:
    snapshot = _snapshot()
    moves = grant_moves(snapshot, snapshot.customer.subscriptions[0], CONFIG)
    terms = contract_terms(
        snapshot, CONFIG, customer_id="mc", billing_provider_configuration_id="bpc", uniqueness_key="k"
    )
    return moves, _read_back(terms)


def _replace_balance(contract: MetronomeContract, name: str, **changes: Any) -> MetronomeContract:
    balances = tuple(dataclasses.replace(b, **changes) if b.name == name else b for b in contract.balances)
    return dataclasses.replace(contract, balances=balances)


def test_a_contract_holding_stripes_remaining_balances_reconciles() -> None:
    moves, contract = _moves_and_contract()
    assert {m.grant_id: m.remaining for m in moves if m.target} == {"cg_paid": 4321, "cg_promo": 500}
    assert {b.name: (b.kind, b.amount) for b in contract.balances} == {
        "cg_paid": ("PREPAID", 4321),
        "cg_promo": ("CREDIT", 500),
    }
    assert reconcile(contract, moves) == []


def test_a_commit_amount_one_cent_off_stripes_remaining_balance_is_reported() -> None:
    moves, contract = _moves_and_contract()
    off = _replace_balance(contract, "cg_paid", amount=4320)
    assert reconcile(off, moves) == ["cg_paid: Metronome 4320 cents, Stripe remaining 4321"]


def test_a_credit_amount_above_stripes_remaining_balance_is_reported() -> None:
    moves, contract = _moves_and_contract()
    off = _replace_balance(contract, "cg_promo", amount=2500)
    assert reconcile(off, moves) == ["cg_promo: Metronome 2500 cents, Stripe remaining 500"]


def test_a_grant_missing_from_the_contract_is_reported() -> None:
    moves, contract = _moves_and_contract()
    without = dataclasses.replace(contract, balances=tuple(b for b in contract.balances if b.name != "cg_promo"))
    assert reconcile(without, moves) == ["cg_promo: no CREDIT on contract contract-1"]


def test_a_paid_grant_read_back_as_a_credit_or_an_invoiced_commit_is_reported() -> None:
    moves, contract = _moves_and_contract()
    as_credit = _replace_balance(contract, "cg_paid", kind="CREDIT", invoiced=None)
    assert reconcile(as_credit, moves) == ["cg_paid: is CREDIT, expected PREPAID"]
    invoiced = _replace_balance(contract, "cg_paid", invoiced=True)
    assert reconcile(invoiced, moves) == ["cg_paid: the commit would invoice a balance the customer already paid"]


def test_a_changed_priority_or_expiry_is_reported() -> None:
    moves, contract = _moves_and_contract()
    reprioritised = _replace_balance(contract, "cg_paid", priority=50.0)
    assert reconcile(reprioritised, moves) == ["cg_paid: priority 50.0, expected 51"]
    later = datetime(2027, 4, 1, tzinfo=UTC)
    extended = _replace_balance(contract, "cg_paid", ending_before=later)
    assert reconcile(extended, moves) == ["cg_paid: ends 2027-04-01T00:00:00+00:00, expected 2027-03-01 11:00:00+00:00"]


def test_a_grant_that_stays_in_stripe_is_not_looked_for() -> None:
    moves, contract = _moves_and_contract()
    (used,) = [m for m in moves if m.grant_id == "cg_used"]
    assert used.target is None and used.skipped == "no balance left"
    assert all(b.name != "cg_used" for b in contract.balances)
    assert reconcile(contract, [used]) == []
