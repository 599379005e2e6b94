"""The plan's API budget on a known small plan: the calls per vendor endpoint (blocked customers make none of the
run's), and how long they take at the vendors' limits (Stripe 100/s live and 25/s per endpoint, Metronome's
assumed 100/s), the longest of the vendors' bounds."""

from __future__ import annotations

from collections import Counter

from billmig.metronome import plan as budget
from billmig.metronome.plan import BatchPlan, CustomerPlan


def _customer(cid: str, calls: dict[str, int], *, can_migrate: bool = True, bucket: str = "ready") -> CustomerPlan:
    return CustomerPlan(
        stripe_customer_id=cid,
        internal_id=f"acct_{cid}",
        bucket=bucket,
        buckets=[bucket],
        reasons=[] if can_migrate else [f"{cid} is past due"],
        can_migrate=can_migrate,
        calls=Counter(calls),
    )


def _fresh(cid: str, grants: int) -> CustomerPlan:
    """What `plan_customer` counts for a customer not yet in Metronome, with `grants` credit grants."""
    return _customer(
        cid,
        {
            budget.STRIPE_CUSTOMER: 1,
            budget.STRIPE_SUBSCRIPTIONS: 1,
            budget.STRIPE_GRANTS: 1,
            budget.STRIPE_BALANCE: grants,
            budget.M_FIND: 1,
            budget.M_GET_CONFIGS: 1,
            budget.M_GET_CUSTOMER: 1,
            budget.M_LIST_CONTRACTS: 1,
            budget.M_GET_CONTRACT: 1,
            budget.M_CREATE: 1,
            budget.M_BILLABLE: 1,
            budget.M_CREATE_CONTRACT: 1,
        },
    )


def test_the_published_limits() -> None:
    assert budget.STRIPE_LIVE_PER_SECOND == 100.0
    assert budget.STRIPE_PER_ENDPOINT_PER_SECOND == 25.0
    assert budget.METRONOME_ASSUMED_PER_SECOND == 100.0


def test_calls_per_endpoint_add_up_over_the_customers_that_migrate() -> None:
    blocked = _customer("cus_c", {budget.STRIPE_CUSTOMER: 1, budget.STRIPE_BALANCE: 7}, can_migrate=False)
    plan = BatchPlan([_fresh("cus_a", 2), _fresh("cus_b", 3), blocked])
    calls = plan.calls()
    assert calls[budget.STRIPE_CUSTOMER] == 2  # the blocked customer's read is the plan's, not the run's
    assert calls[budget.STRIPE_BALANCE] == 5
    assert calls[budget.M_CREATE_CONTRACT] == 2
    assert sum(v for k, v in calls.items() if k.startswith("stripe ")) == 11
    assert sum(v for k, v in calls.items() if k.startswith("metronome ")) == 16
    assert plan.as_json()["calls"] == dict(sorted(calls.items()))


def test_a_batch_bound_by_stripes_global_limit() -> None:
    # 40 customers, 2 grants each: 40 x (3 + 2) = 200 Stripe calls, the largest endpoint 80 (balance summaries).
    plan = BatchPlan([_fresh(f"cus_{n}", 2) for n in range(40)])
    calls = plan.calls()
    assert calls[budget.STRIPE_BALANCE] == 80 and calls[budget.STRIPE_CUSTOMER] == 40
    duration = plan.duration()
    # 200 / 100 = 2.0 s globally; the largest endpoint, 80 / 25 = 3.2 s, binds
    assert duration["stripe"] == 80 / 25
    # 40 x 8 = 320 Metronome calls at 100/s
    assert duration["metronome"] == 320 / 100
    assert duration["bound"] == max(80 / 25, 320 / 100)


def test_a_batch_bound_by_stripes_per_endpoint_limit() -> None:
    # one customer with 200 grants: 203 Stripe calls, 200 of them on one endpoint: 200 / 25 = 8 s, not 203 / 100
    plan = BatchPlan([_fresh("cus_a", 200)])
    duration = plan.duration()
    assert duration["stripe"] == 8.0
    assert duration["metronome"] == 8 / 100
    assert duration["bound"] == 8.0


def test_a_batch_bound_by_metronome() -> None:
    # Metronome-heavy: 10 customers already partly migrated, each with 30 Metronome calls and 4 Stripe calls
    partly = [
        _customer(
            f"cus_{n}", {budget.STRIPE_CUSTOMER: 4, budget.M_GET_CONTRACT: 30}, bucket="already or partly migrated"
        )
        for n in range(10)
    ]
    duration = BatchPlan(partly).duration()
    assert duration["stripe"] == max(40 / 100, 40 / 25)
    assert duration["metronome"] == 300 / 100
    assert duration["bound"] == 3.0


def test_the_json_rounds_each_bound_up_to_a_tenth_of_a_second_and_totals_the_buckets() -> None:
    blocked = _customer("cus_x", {budget.STRIPE_CUSTOMER: 1}, can_migrate=False, bucket="past_due")
    plan = BatchPlan([_fresh("cus_a", 1), _fresh("cus_b", 0), blocked])
    document = plan.as_json()
    # Stripe: 7 calls, largest endpoint 2 -> max(0.07, 0.08) = 0.08 s -> 0.1; Metronome: 16 / 100 = 0.16 s -> 0.2
    assert document["duration_seconds"] == {"stripe": 0.1, "metronome": 0.2, "bound": 0.2}
    assert document["totals"] == {"past_due": 1, "ready": 2}
    assert document["blocked"] == {"cus_x": "cus_x is past due"}


def test_an_empty_or_wholly_blocked_batch_costs_nothing() -> None:
    blocked = _customer("cus_x", {budget.STRIPE_CUSTOMER: 1}, can_migrate=False, bucket="past_due")
    assert BatchPlan([blocked]).duration() == {"stripe": 0.0, "metronome": 0.0, "bound": 0.0}
    assert BatchPlan([]).calls() == Counter()
