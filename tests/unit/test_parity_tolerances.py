"""The migration config's `parity` section: Metronome's guidance by default, every bad value named by its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billmig.metronome.config import ParityTolerances, load_config
from billmig.metronome.errors import InvalidMigrationConfig
from suite import REPO

SAMPLE = REPO / "events" / "metronome" / "migration.json"


def test_the_defaults_are_metronomes_guidance_under_one_percent_per_invoice_and_half_a_percent_per_line() -> None:
    tolerances = load_config(SAMPLE).parity
    assert tolerances == ParityTolerances(line_cents=1, line_percent=0.5, invoice_cents=1, invoice_percent=1.0)
    assert tolerances.invoice_within(10_000, 10_099) and not tolerances.invoice_within(10_000, 10_101)
    assert tolerances.line_within(10_000, 10_050) and not tolerances.line_within(10_000, 10_051)
    assert tolerances.line_within(3, 4)  # sub-cent rounding: one cent passes whatever the amount
    assert not tolerances.line_within(0, 250)  # usage Metronome charges that Stripe does not


def test_bad_tolerances_fail_naming_the_file_and_the_key(tmp_path: Path) -> None:
    raw = json.loads(SAMPLE.read_text())
    raw["parity"] = {"line_percent": -1, "invoice_cents": "lots", "per_customer": 3}
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InvalidMigrationConfig) as raised:
        load_config(path)
    problems = "\n".join(raised.value.problems)
    assert f"{path}: parity.line_percent:" in problems
    assert f"{path}: parity.invoice_cents:" in problems
    assert f"{path}: parity.per_customer:" in problems


def test_excluded_prices_are_kept_with_their_reason(tmp_path: Path) -> None:
    raw = json.loads(SAMPLE.read_text())
    raw["parity"] = {"exclude_prices": {"growth_monthly": "licensed fee billed by Stripe until cutover"}}
    path = tmp_path / "migration.json"
    path.write_text(json.dumps(raw))
    assert load_config(path).parity.exclude_prices == {"growth_monthly": "licensed fee billed by Stripe until cutover"}
