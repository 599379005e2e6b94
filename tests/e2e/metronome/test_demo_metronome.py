"""The demo's Metronome act on the local stack: every stage that is built passes, and the report adds up."""

from __future__ import annotations

from billmig_cli.demo_lifecycle import print_report
from billmig_cli.demo_metronome import STAGES, run_metronome_act
from billmig_local.stack import LocalStack
from metronome import Metronome
from rich.console import Console


def test_the_metronome_act_runs_its_stages_and_reports(local_stack: LocalStack) -> None:
    console = Console(record=True, width=200)
    # The stages up to the parity run: the cutover stages walk the clock through every anniversary boundary.
    report = run_metronome_act(console, local_stack, customers=20, stages=STAGES[:7])
    print_report(console, report, STAGES)
    assert report.passed, console.export_text()
    assert report.ran()[:6] == [s.name for s in STAGES[:6]]
    assert report.stripe_credit_remaining == report.metronome_credit > 0
    assert report.outcomes["in the parallel run"] == report.contracts and report.outcomes.total() == 20
    assert report.usage_rows["match"] > 0 and set(report.usage_rows) == {"match"}
    metronome = Metronome(bearer_token="local", base_url=local_stack.emulators["metronome"].url)
    (customer,) = list(metronome.v1.customers.list(ingest_alias="acct_000001"))  # the standard first customer
    assert len(list(metronome.v2.contracts.list(customer_id=customer.id))) == 1
    text = console.export_text()
    assert "the lifecycle report" in text and "credits moved" in text
