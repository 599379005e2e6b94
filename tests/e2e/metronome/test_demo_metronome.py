"""The demo's Metronome act on a local stack of its own, the whole lifecycle: every stage passes and the report adds
up.

The act runs in a process of its own (moto's state is per process): it seeds the standard book and walks the world
clock through the cutover, which the worker's shared stack must not see.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from billmig_cli.demo import metronome_act_on_its_own_stack
from billmig_cli.demo_metronome import STAGES

CUSTOMERS = 20


def test_the_metronome_act_runs_its_stages_and_reports(tmp_path: Path) -> None:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        running = pool.submit(metronome_act_on_its_own_stack, tmp_path / "stack", CUSTOMERS)
        report, text = running.result(timeout=900)

    assert report.passed, text
    assert report.ran() == [s.name for s in STAGES], text
    assert report.customers == report.outcomes.total() == CUSTOMERS
    assert report.outcomes["cut over"] > 0 and "failed at the cutover" not in report.outcomes
    assert report.contracts == report.outcomes["cut over"] + report.outcomes["held back"]
    assert report.stripe_credit_remaining == report.metronome_credit > 0
    assert report.usage_rows["match"] > 0 and set(report.usage_rows) == {"match"}
    assert report.parity.startswith("completed") and f"{report.contracts} checked" in report.parity
    assert report.boundary_credit is not None and len(set(report.boundary_credit)) == 1, text
    cut_over = report.outcomes["cut over"]
    assert sum(p.delivered_to_stripe for p in report.invoices.values()) == cut_over, text
    assert report.cleanup.startswith(f"{cut_over} customers cleaned_up"), text
    assert "the lifecycle report" in text and "credits moved" in text and "credits at the boundary" in text
