"""The seeded book of business: deterministic for a seed, idempotent on rerun, with every awkward customer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billmig_local.catalogue import STANDARD, UNRATED_REGION
from billmig_local.emulators.stripe.book_of_business import counts, ensure_catalogue, manifest, populate
from stripe_world import JAN_1, World, start_world


def _book(world: World, customers: int, seed: int) -> dict[str, Any]:
    book = ensure_catalogue(world.client, int(JAN_1.timestamp()))  # the same book date in both worlds
    seeded = populate(world.client, book, customers=customers, seed=seed)
    return manifest(book, seeded, seed) | {"counts": counts(world.client, book, seeded)}


def test_same_seed_same_book_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    first_world = start_world(tmp_path / "a")
    second_world = start_world(tmp_path / "b")
    try:
        first = _book(first_world, 7, seed=11)
        second = _book(second_world, 7, seed=11)
        assert first == second
        rerun = _book(first_world, 7, seed=11)
        assert rerun == first
        assert first["counts"]["customers"] == 7

        c = first_world.client.v1
        profiles = {entry["profile"]: entry for entry in first["customers"]}
        assert {
            "past_due",
            "trialing",
            "cancel_at_period_end",
            "unrated_region",
            "threshold",
            "mid_month_anchor",
        } <= set(profiles)
        anchored = c.subscriptions.retrieve(profiles["mid_month_anchor"]["subscription"])
        anchor = datetime.fromtimestamp(anchored.billing_cycle_anchor, UTC)
        assert (anchor.day != 1, anchor.hour, anchor.minute) == (True, 9, 30)
        assert anchored.billing_cycle_anchor != anchored.start_date
        period_end = datetime.fromtimestamp(anchored["items"].data[0].current_period_end, UTC)
        assert (period_end.day, period_end.hour, period_end.minute) == (anchor.day, 9, 30)
        assert c.subscriptions.retrieve(profiles["past_due"]["subscription"]).status == "past_due"
        assert c.subscriptions.retrieve(profiles["trialing"]["subscription"]).status == "trialing"
        assert c.subscriptions.retrieve(profiles["cancel_at_period_end"]["subscription"]).cancel_at_period_end is True
        unrated = STANDARD.offering("storage_gb").stripe_lookup_key(UNRATED_REGION)
        assert unrated in profiles["unrated_region"]["prices"]
        assert first["unrated_lookup_key"] == unrated
        customer = c.customers.retrieve(first["customers"][0]["customer"])
        assert customer.metadata["internal_customer_id"] == "acct_000001"
        # the catalogue translated: one meter and lookup key per (metered offering, pricing-group value)
        expected_keys = {
            offering.stripe_lookup_key(rate.pricing_group_value)
            for offering in STANDARD.metered
            for rate in offering.rates
        } | {unrated}
        assert set(first["metered_prices"]) == expected_keys
        assert set(first["licensed_prices"]) == {plan.key for plan in STANDARD.plans}
        for key, price in first["metered_prices"].items():
            listed = c.prices.list(params={"lookup_keys": [key]}).data
            assert [p.id for p in listed] == [price["price"]]
            assert listed[0].recurring is not None and listed[0].recurring.meter == price["meter"]
    finally:
        first_world.stop()
        second_world.stop()


def test_grants_are_partly_used_and_some_invoices_carry_credits(tmp_path: Path) -> None:
    world = start_world(tmp_path)
    try:
        book = _book(world, 12, seed=7)
        c = world.client.v1
        credited = [
            invoice
            for invoice in c.invoices.list(params={"limit": 100}).auto_paging_iter()
            if invoice.total_pretax_credit_amounts
        ]
        assert credited
        partly_used = 0
        for entry in book["customers"]:
            for grant in entry["credit_grants"]:
                summary = c.billing.credit_balance_summary.retrieve(
                    params={
                        "customer": entry["customer"],
                        "filter": {"type": "credit_grant", "credit_grant": grant["id"]},
                    }
                )
                ledger = summary.balances[0].ledger_balance.monetary.value  # type: ignore[union-attr]
                if 0 < ledger < grant["value"]:
                    partly_used += 1
        assert partly_used > 0
        grants = [g for entry in book["customers"] for g in entry["credit_grants"]]
        assert {g["category"] for g in grants} == {"paid", "promotional"}
        assert any(g["scope"] == "prices" for g in grants)
        assert any(g["expires_at"] is not None and g["expires_at"] < book["as_of"] for g in grants)  # expired
        assert any(g["expires_at"] is not None and g["expires_at"] > book["as_of"] for g in grants)  # expiring
        assert any(entry["profile"] == "threshold" for entry in book["customers"])
    finally:
        world.stop()


def test_seed_command_prints_a_summary_and_writes_a_manifest(shared_world: World, tmp_path: Path) -> None:
    import json

    import typer
    from billmig_local.emulators.stripe.seed import seed
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(seed)
    out = tmp_path / "book.json"
    args = ["--customers", "3", "--seed", "5", "--url", shared_world.emulator.url, "--manifest", str(out)]
    result = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "customers" in result.output and "meter events" in result.output
    written = json.loads(out.read_text())
    assert written["counts"]["customers"] == 3
    assert [c["internal_customer_id"] for c in written["customers"]] == ["acct_000001", "acct_000002", "acct_000003"]
    missing = CliRunner().invoke(app, ["--state-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1


def test_the_seed_command_leaves_every_test_clock_at_the_world_instant(tmp_path: Path) -> None:
    from billmig_local.emulators.stripe.seed import seed

    world = start_world(tmp_path)
    try:
        world.set_time(int(JAN_1.timestamp()) + 1800)  # half past: the book is dated at the hour
        before = int(world.clock.now())
        seed(customers=2, seed=5, state_dir=tmp_path, url=world.emulator.url, workers=1, manifest_path=None)
        after = int(world.clock.now())
        clocks = world.client.v1.test_helpers.test_clocks.list(params={"limit": 100}).data
        # the book's history ends at the hour before `before`; its clocks do not stay there
        assert len(clocks) == 2 and all(before <= clock.frozen_time <= after for clock in clocks)
    finally:
        world.stop()
