"""The plan: a dry run of a batch that reads Stripe and Metronome and writes nothing.

Per customer: its triage bucket, the writes the run would make (the same names the steps record, so a test can hold
the plan to the run), and each grant it would move. For the batch: totals per bucket, the calls the run would make
per vendor endpoint, and how long they take at the vendors' published limits (Stripe: 100 requests/s in live mode,
25/s per endpoint by default; Metronome publishes no request rate, so an assumed one is named as such).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from billmig.metronome.contract import contract_key, find_contract
from billmig.metronome.contract_terms import grant_moves, live_subscription, moved_at_cutover
from billmig.metronome.customer import UNBILLABLE
from billmig.metronome.ports import MetronomeTarget
from billmig.metronome.resolution import ResolvedConfig
from billmig.metronome.snapshot import take_snapshot
from billmig.metronome.triage import Bucket, triage
from billmig.stripe_source.port import StripeSource

STRIPE_LIVE_PER_SECOND = 100.0
STRIPE_PER_ENDPOINT_PER_SECOND = 25.0
METRONOME_ASSUMED_PER_SECOND = 100.0
"""Metronome documents 429s but no request rate; this is the local emulator's `metronome` preset, an assumption."""

# The endpoints each step calls (the adapters' calls, by HTTP method and path).
STRIPE_CUSTOMER = "stripe GET /v1/customers/{id}"
STRIPE_SUBSCRIPTIONS = "stripe GET /v1/subscriptions"
STRIPE_GRANTS = "stripe GET /v1/billing/credit_grants"
STRIPE_BALANCE = "stripe GET /v1/billing/credit_balance_summary"
M_FIND = "metronome GET /v1/customers"
M_CREATE = "metronome POST /v1/customers"
M_GET_CUSTOMER = "metronome GET /v1/customers/{id}"
M_GET_CONFIGS = "metronome POST /v1/getCustomerBillingProviderConfigurations"
M_SET_CONFIGS = "metronome POST /v1/setCustomerBillingProviderConfigurations"
M_BILLABLE = "metronome POST /v1/customers/setBillableStatus"
M_LIST_CONTRACTS = "metronome POST /v2/contracts/list"
M_CREATE_CONTRACT = "metronome POST /v1/contracts/create"
M_GET_CONTRACT = "metronome POST /v2/contracts/get"


@dataclass
class CustomerPlan:
    stripe_customer_id: str
    internal_id: str | None
    bucket: str
    buckets: list[str]
    reasons: list[str]
    can_migrate: bool
    actions: list[str] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchPlan:
    customers: list[CustomerPlan]

    @property
    def blocked(self) -> list[CustomerPlan]:
        return [c for c in self.customers if not c.can_migrate]

    def totals(self) -> dict[str, int]:
        counts = Counter(c.bucket for c in self.customers)
        return {str(b): counts[str(b)] for b in Bucket if counts[str(b)]}

    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for customer in self.customers:
            if customer.can_migrate:
                total.update(customer.calls)
        return total

    def duration(self) -> dict[str, float]:
        """Seconds the run's calls take at the vendors' limits, at best (all customers in parallel)."""
        calls = self.calls()
        stripe = {k: v for k, v in calls.items() if k.startswith("stripe ")}
        metronome = sum(v for k, v in calls.items() if k.startswith("metronome "))
        stripe_bound = max(
            sum(stripe.values()) / STRIPE_LIVE_PER_SECOND,
            max(stripe.values(), default=0) / STRIPE_PER_ENDPOINT_PER_SECOND,
        )
        metronome_bound = metronome / METRONOME_ASSUMED_PER_SECOND
        return {"stripe": stripe_bound, "metronome": metronome_bound, "bound": max(stripe_bound, metronome_bound)}

    def as_json(self) -> dict[str, Any]:
        return {
            "customers": [
                {
                    "stripe_customer_id": c.stripe_customer_id,
                    "internal_id": c.internal_id,
                    "bucket": c.bucket,
                    "buckets": c.buckets,
                    "reasons": c.reasons,
                    "can_migrate": c.can_migrate,
                    "actions": c.actions,
                    "grants": c.grants,
                }
                for c in self.customers
            ],
            "totals": self.totals(),
            "blocked": {c.stripe_customer_id: "; ".join(c.reasons) for c in self.blocked},
            "calls": dict(sorted(self.calls().items())),
            "duration_seconds": {k: math.ceil(v * 10) / 10 for k, v in self.duration().items()},
        }


def plan_customer(
    customer_id: str, config: ResolvedConfig, stripe: StripeSource, metronome: MetronomeTarget
) -> CustomerPlan:
    snapshot = take_snapshot(stripe, customer_id)
    alias = snapshot.customer.metadata.get(config.internal_id_metadata_key, "").strip() or None
    existing = metronome.customer_by_alias(alias) if alias else None
    verdict = triage(snapshot, config, in_metronome=existing is not None)
    plan = CustomerPlan(
        stripe_customer_id=customer_id,
        internal_id=alias,
        bucket=str(verdict.bucket),
        buckets=[str(b) for b in verdict.buckets],
        reasons=list(verdict.reasons),
        can_migrate=verdict.can_migrate,
    )
    calls = plan.calls
    calls.update({STRIPE_CUSTOMER: 1, STRIPE_SUBSCRIPTIONS: 1, STRIPE_GRANTS: 1, STRIPE_BALANCE: len(snapshot.grants)})
    if not verdict.can_migrate:
        return plan
    subscription = live_subscription(snapshot)
    at_cutover = moved_at_cutover(subscription)
    plan.grants = [m.describe(at_cutover=at_cutover) for m in grant_moves(snapshot, subscription, config)]
    calls.update({M_FIND: 1, M_GET_CONFIGS: 1, M_GET_CUSTOMER: 1, M_LIST_CONTRACTS: 1, M_GET_CONTRACT: 1})
    if existing is None:
        plan.actions += ["create_customer", "set_unbillable", "create_contract"]
        calls.update({M_CREATE: 1, M_BILLABLE: 1, M_CREATE_CONTRACT: 1})
        return plan
    configs = [
        c for c in metronome.billing_configurations(existing.id) if c.billing_provider == "stripe" and not c.archived
    ]
    ours = [c for c in configs if c.stripe_customer_id == customer_id]
    if configs and not ours:
        plan.can_migrate = False
        plan.reasons.append(f"Metronome customer {existing.id} bills another Stripe customer")
        return plan
    if not ours:
        plan.actions.append("add_billing_provider_configuration")
        calls[M_SET_CONFIGS] += 1
    if existing.billable_status != UNBILLABLE:
        plan.actions.append("set_unbillable")
        calls[M_BILLABLE] += 1
    contracts = metronome.contracts(existing.id)
    if find_contract(contracts, contract_key(config.migration_id, customer_id)) is None:
        if contracts:
            plan.can_migrate = False
            plan.reasons.append(f"Metronome customer {existing.id} has contracts this migration did not make")
            return plan
        plan.actions.append("create_contract")
        calls[M_CREATE_CONTRACT] += 1
    return plan


def plan_batch(
    customer_ids: Iterable[str], config: ResolvedConfig, stripe: StripeSource, metronome: MetronomeTarget
) -> BatchPlan:
    return BatchPlan([plan_customer(c, config, stripe, metronome) for c in customer_ids])
