"""The credit check after the first Metronome cycle, for every cut-over customer.

Every moved balance (a commit or credit named after its Stripe grant), read through Metronome's API, must equal
what Stripe had left of that grant (its remaining balance now that Stripe's last invoice is final; nothing once
voided or expired by the boundary) minus what Metronome's invoices from the boundary on drew from it
(`billmig.metronome.balance_settlement` set it so at the boundary). Read-only; a mismatch fails the customer with
the numbers.
"""

from __future__ import annotations

from billmig.metronome.balance_settlement import drawn, left_in_stripe
from billmig.metronome.cutover import finish, not_before, released
from billmig.metronome.errors import CreditCheckFailed
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.snapshot import CustomerStepRequest, CustomerStepResult
from billmig.metronome.storage import RunStorage
from billmig.progress import ProgressStore
from billmig.steps import RunningStep, Step, StepKey, StepOutcome, run_once
from billmig.stripe_source.port import StripeSource
from billmig.world_clock import Clock


def check_credits(
    request: CustomerStepRequest,
    storage: RunStorage,
    stripe: StripeSource,
    target: MetronomeTarget,
    store: ProgressStore,
    clock: Clock,
) -> CustomerStepResult:
    cut = released(request, storage, store)
    stripe_id = request.stripe_customer_id
    not_before(cut.check_at, clock, f"{stripe_id}: credit check (after the first Metronome cycle)")

    def body(_: RunningStep) -> StepOutcome:
        left = {g.id: left_in_stripe(g, cut.boundary) for g in stripe.credit_grants(stripe_id)}
        contract = target.contract(cut.metronome_customer_id, cut.metronome_contract_id, with_balances=True)
        since = drawn(target.invoices(cut.metronome_customer_id), cut.boundary, before=False)
        problems: list[str] = []
        checked: list[str] = []
        for balance in contract.balances:
            if balance.name not in left:
                continue  # not a moved grant (an auto-recharge commit)
            expected = left[balance.name] - since.get(balance.id, 0)
            line = (
                f"{balance.name}: Stripe left {left[balance.name]}, Metronome drew {since.get(balance.id, 0)}, "
                f"balance {balance.balance} (expected {expected})"
            )
            (checked if balance.balance == expected else problems).append(line)
        if problems:
            raise CreditCheckFailed(f"{stripe_id} contract {cut.metronome_contract_id}: " + "; ".join(problems))
        return StepOutcome("matched", detail="; ".join(checked) or "no moved balances")

    done = run_once(store, StepKey(request.batch_id, stripe_id, Step.METRONOME_CREDIT_CHECK), request.runner, body)
    return finish(request, Step.METRONOME_CREDIT_CHECK, done)
