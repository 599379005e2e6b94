"""The migration config's checks, and the contract terms computed from a snapshot (decisions.md (a), (b))."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from billmig.metronome.config import load_config
from billmig.metronome.contract_terms import contract_terms, grant_moves, statement_schedule
from billmig.metronome.errors import InvalidMigrationConfig
from billmig.metronome.resolution import ResolvedConfig, ResolvedPrice
from billmig.metronome.snapshot import CustomerSnapshot
from billmig.metronome.triage import Bucket, triage
from billmig.stripe_source.views import StripeCreditGrant, StripeCustomer, StripeItem, StripeSubscription

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "metronome" / "migration.json"


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_the_sample_config_loads() -> None:
    config = load_config(SAMPLE)
    assert config.parallel_run_start == datetime(2026, 12, 1, tzinfo=UTC)
    assert config.mapping_for("price_x", "storage_gb_eu_west").pricing_group_values == {"region": "eu-west"}  # type: ignore[union-attr]


def test_every_problem_names_the_file_and_the_key(tmp_path: Path) -> None:
    raw = json.loads(SAMPLE.read_text())
    raw["parallel_run_start"] = "2026-12-15T00:00:00Z"
    raw["prices"][1] = {"stripe_price": "compute_minutes"}
    raw["auto_recharge"]["recharge_to_amount"] = 2500
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InvalidMigrationConfig) as caught:
        load_config(path)
    problems = caught.value.problems
    assert any(p.startswith(f"{path}: parallel_run_start:") and "month boundary" in p for p in problems)
    assert any(p.startswith(f"{path}: prices.1:") and "not_migrated" in p for p in problems)
    assert any(p.startswith(f"{path}: auto_recharge:") for p in problems)


def test_a_file_that_is_not_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "migration.json"
    path.write_text('{"rate_card": "Standard",\n  oops}')
    with pytest.raises(InvalidMigrationConfig, match=r"migration.json: not JSON \(line 2, column 3\)"):
        load_config(path)


def test_yaml_and_overrides(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "migration.yaml"
    path.write_text(yaml.safe_dump(json.loads(SAMPLE.read_text())))
    config = load_config(path, {"strategy": "hard", "cutover_at": "2027-02-01T00:00:00Z"})
    assert config.strategy == "hard" and config.cutover_at == datetime(2027, 2, 1, tzinfo=UTC)


CONFIG = ResolvedConfig(
    migration_id="m",
    rate_card_id="rc",
    internal_id_metadata_key="internal_customer_id",
    commit_product_id="p-commit",
    credit_product_id="p-credit",
    prices=[
        ResolvedPrice(stripe_price="api_calls", product_id="p-api"),
        ResolvedPrice(stripe_price="storage_us", product_id="p-storage", pricing_group_values={"region": "us-east"}),
        ResolvedPrice(stripe_price="storage_eu", product_id="p-storage", pricing_group_values={"region": "eu-west"}),
    ],
    parallel_run_start=datetime(2026, 12, 1, tzinfo=UTC),
    cutover_at=datetime(2027, 1, 1, tzinfo=UTC),
    strategy="parallel",
    auto_recharge={"threshold_amount": 2000, "recharge_to_amount": 5000},  # type: ignore[arg-type]
    concurrency=10,
)


def _item(key: str) -> StripeItem:
    return StripeItem(f"price_{key}", key, 0, "month", f"mtr_{key}", _ts(2026, 11, 1), _ts(2026, 12, 1))


def _snapshot(anchor: int, grants: list[StripeCreditGrant]) -> CustomerSnapshot:
    subscription = StripeSubscription(
        id="sub_1",
        status="active",
        start_date=_ts(2026, 9, 14, 9, 30),
        items=(_item("api_calls"), _item("storage_us"), _item("storage_eu")),
        billing_cycle_anchor=anchor,
    )
    customer = StripeCustomer("cus_1", None, "Acme", {"internal_customer_id": "acct_1"}, None, (subscription,))
    return CustomerSnapshot(customer=customer, grants=grants, taken_at=datetime(2026, 11, 20, tzinfo=UTC))


def _grant(gid: str, category: str, remaining: int, **extra: object) -> StripeCreditGrant:
    values: dict[str, object] = {
        "id": gid,
        "name": None,
        "category": category,
        "amount": 10_000,
        "remaining": remaining,
        "currency": "usd",
        "priority": 50,
        "effective_at": None,
        "expires_at": None,
        "voided_at": None,
        "price_type": "metered",
    }
    return StripeCreditGrant(**(values | extra))  # type: ignore[arg-type]


def test_statements_follow_stripe_periods() -> None:
    first = statement_schedule(_snapshot(_ts(2026, 10, 1), []).customer.subscriptions[0], CONFIG)
    assert first == {
        "frequency": "MONTHLY",
        "day": "FIRST_OF_MONTH",
        "invoice_generation_starting_at": "2026-12-01T00:00:00Z",
    }
    mid = statement_schedule(_snapshot(_ts(2026, 9, 14, 9, 30), []).customer.subscriptions[0], CONFIG)
    assert mid["day"] == "CUSTOM_DATE" and mid["billing_anchor_date"] == "2026-09-14T09:30:00Z"
    assert triage(_snapshot(_ts(2026, 9, 14, 9, 30), []), CONFIG).bucket is Bucket.ANNIVERSARY_BILLING


def test_grants_move_at_their_remaining_balance_with_priority_expiry_and_applicability() -> None:
    grants = [
        _grant("cg_paid", "paid", 4321, expires_at=_ts(2027, 3, 1, 10, 15)),
        _grant(
            "cg_promo",
            "promotional",
            500,
            priority=10,
            price_type=None,
            price_ids=("price_storage_us", "price_storage_eu"),
        ),
        _grant("cg_used", "paid", 0),
        _grant("cg_gone", "promotional", 900, expires_at=_ts(2026, 11, 2)),
    ]
    snapshot = _snapshot(_ts(2026, 10, 1), grants)
    moves = {m.grant_id: m for m in grant_moves(snapshot, snapshot.customer.subscriptions[0], CONFIG)}
    assert moves["cg_used"].skipped == "no balance left" and moves["cg_gone"].skipped == "expired"
    terms = contract_terms(
        snapshot, CONFIG, customer_id="mc", billing_provider_configuration_id="bpc", uniqueness_key="k"
    )
    assert terms["starting_at"] == "2026-09-14T00:00:00Z"
    (commit,) = terms["commits"]
    assert commit["type"] == "PREPAID" and commit["priority"] == 51 and commit["name"] == "cg_paid"
    assert commit["access_schedule"]["schedule_items"] == [
        {"amount": 4321, "starting_at": "2026-12-01T00:00:00Z", "ending_before": "2027-03-01T11:00:00Z"}
    ]
    assert commit["invoice_schedule"]["do_not_invoice"] is True
    assert commit["applicable_product_ids"] == ["p-api", "p-storage"]
    (credit,) = terms["credits"]
    assert credit["priority"] == 11 and "invoice_schedule" not in credit
    assert credit["specifiers"] == [
        {"product_id": "p-storage", "pricing_group_values": {"region": "us-east"}},
        {"product_id": "p-storage", "pricing_group_values": {"region": "eu-west"}},
    ]


def test_a_threshold_customers_grants_wait_for_the_cutover() -> None:
    """decisions.md (c): the contract is made without them; the plan says when they move."""
    snapshot = _snapshot(_ts(2026, 10, 1), [_grant("cg_paid", "paid", 4321), _grant("cg_used", "paid", 0)])
    subscription = dataclasses.replace(snapshot.customer.subscriptions[0], billing_threshold=10_000)
    customer = dataclasses.replace(snapshot.customer, subscriptions=(subscription,))
    snapshot = snapshot.model_copy(update={"customer": customer})
    terms = contract_terms(
        snapshot, CONFIG, customer_id="mc", billing_provider_configuration_id="bpc", uniqueness_key="k"
    )
    assert terms["commits"] == [] and terms["credits"] == []
    described = {m.grant_id: m.describe(at_cutover=True) for m in grant_moves(snapshot, subscription, CONFIG)}
    assert described["cg_paid"]["target"] == "commit at cutover"
    assert described["cg_used"]["target"] == "skipped: no balance left"
