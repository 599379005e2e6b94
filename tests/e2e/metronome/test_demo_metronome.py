"""The demo's Metronome act on the local stack: seed, plan, start 20 customers, print what Metronome now holds."""

from __future__ import annotations

from billmig_cli.demo_metronome import run_metronome_act
from billmig_local.stack import LocalStack
from metronome import Metronome
from rich.console import Console


def test_the_metronome_act_migrates_what_the_plan_lets_through(local_stack: LocalStack) -> None:
    console = Console(record=True, width=200)
    assert run_metronome_act(console, local_stack, customers=20) is True
    text = console.export_text()
    assert "created in Metronome" in text and "of Stripe credit balances moved" in text
    assert "in their parallel run" in text
    metronome = Metronome(bearer_token="local", base_url=local_stack.emulators["metronome"].url)
    (customer,) = list(metronome.v1.customers.list(ingest_alias="acct_000001"))  # the standard first customer
    assert len(list(metronome.v2.contracts.list(customer_id=customer.id))) == 1
