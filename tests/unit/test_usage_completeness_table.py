"""`billmig usage completeness` prints its rows whole on a narrow terminal: folded onto more lines, never cut with an
ellipsis, so an operator can copy a customer id or a meter out of it."""

from __future__ import annotations

import pytest
from billmig.usage.completeness import CompletenessReport, CompletenessRow
from billmig_cli.commands import usage
from rich.console import Console


@pytest.mark.parametrize("width", [80, 60])
def test_a_row_is_folded_not_cut_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    row = CompletenessRow(
        internal_id="u325389041",
        stripe_customer_id="cus_Emu00000000000042",
        meter="compute_minutes_us_east",
        period="2027-01",
        window_start="2027-01-01T00:00:00Z",
        window_end="2027-02-01T00:00:00Z",
        stripe="1200",
        metronome="1211",
        difference="11",
        status="extra",
    )
    console = Console(width=width, record=True, color_system=None)
    monkeypatch.setattr(usage, "console", console)
    usage.print_report(CompletenessReport("wave-1", "2027-02-03T00:00:00Z", 48, [row]))
    printed = console.export_text()
    assert "…" not in printed
    body = [line.split("│")[1:-1] for line in printed.splitlines() if line.startswith("│")]
    columns = ["".join(part.strip() for part in column) for column in zip(*body, strict=True)]  # each cell, unfolded
    assert columns[:2] == ["u325389041(cus_Emu00000000000042)", "compute_minutes_us_east"]
    assert columns[-2:] == ["11", "extra"]
    assert "0 match, 0 missing, 1 extra" in printed
