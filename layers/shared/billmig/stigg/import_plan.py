"""Checking a whole import before anything is sent, and cutting it into the calls Stigg accepts.

Stigg's order is customers, then subscriptions, then usage; a record that refers to a customer neither in the
customers file nor already in Stigg is refused here, and so is a paid plan whose customer has no payment method (Stigg
would answer PAYMENT_REQUIRED half-way through) or which does not name the Stripe subscription it replaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from billmig.stigg.record_files import FileProblem, problems_error
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import StiggCustomer

CUSTOMERS_PER_CALL = 1000  # importCustomersBulk: 1-1000 records
SUBSCRIPTIONS_PER_CALL = 1000  # importSubscriptionsBulk: 1-1000 records
USAGES_PER_CALL = 100  # reportUsageBulk: 1-100 records
USAGES_PER_CHUNK = 10 * USAGES_PER_CALL  # one Task sends ten calls, several at a time, and resumes between them

_T = TypeVar("_T")
_R = TypeVar("_R", CustomerRecord, SubscriptionRecord, UsageRecord)


@dataclass(frozen=True)
class Located(Generic[_R]):
    """A record with where it came from, so every later problem can name its file and index."""

    file: str
    index: int
    record: _R


@dataclass(frozen=True)
class ImportRules:
    paid_plan_ids: frozenset[str] = frozenset()
    customers_per_call: int = CUSTOMERS_PER_CALL
    subscriptions_per_call: int = SUBSCRIPTIONS_PER_CALL
    usages_per_chunk: int = USAGES_PER_CHUNK


@dataclass
class ImportPlan:
    customers: list[list[CustomerRecord]] = field(default_factory=list)
    subscriptions: list[list[tuple[str, SubscriptionRecord]]] = field(default_factory=list)
    paid: list[tuple[str, SubscriptionRecord]] = field(default_factory=list)
    usage: list[list[UsageRecord]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "customers": sum(len(c) for c in self.customers),
            "subscriptions": sum(len(c) for c in self.subscriptions),
            "paid_subscriptions": len(self.paid),
            "usage": sum(len(c) for c in self.usage),
        }


def chunked(items: Sequence[_T], size: int) -> list[list[_T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def subscription_id_for(record: SubscriptionRecord) -> str:
    """Deterministic, so a re-run upserts the same subscription instead of adding one."""
    if record.subscription_id:
        return record.subscription_id
    if record.billing_id:
        return f"migrated-{record.billing_id}"
    digest = hashlib.sha256(record.key.encode()).hexdigest()[:20]
    return f"migrated-{digest}"


def plan_import(
    customers: Iterable[Located[CustomerRecord]],
    subscriptions: Iterable[Located[SubscriptionRecord]],
    usage: Iterable[Located[UsageRecord]],
    rules: ImportRules,
    existing_customer: Callable[[str], StiggCustomer | None],
) -> ImportPlan:
    """The import cut into calls, or `InvalidImportFile` listing every ordering and paid-plan problem at once."""
    customers, subscriptions, usage = list(customers), list(subscriptions), list(usage)
    in_file = {c.record.customer_id: c.record for c in customers}
    looked_up: dict[str, StiggCustomer | None] = {}

    def stigg_customer(customer_id: str) -> StiggCustomer | None:
        if customer_id not in looked_up:
            looked_up[customer_id] = existing_customer(customer_id)
        return looked_up[customer_id]

    problems: list[FileProblem] = []

    def known(located: Located[SubscriptionRecord] | Located[UsageRecord]) -> bool:
        customer_id = located.record.customer_id
        if customer_id in in_file or stigg_customer(customer_id) is not None:
            return True
        problems.append(
            FileProblem(
                file=located.file,
                index=located.index,
                record_id=located.record.key,
                field="customerId",
                message=f"customer {customer_id!r} is neither in the customers file nor in Stigg: import it first",
            )
        )
        return False

    bulk: list[tuple[str, SubscriptionRecord]] = []
    paid: list[tuple[str, SubscriptionRecord]] = []
    seen_keys: dict[str, Located[SubscriptionRecord]] = {}
    for located in subscriptions:
        record = located.record
        earlier = seen_keys.get(record.key)
        if earlier is not None:
            problems.append(
                FileProblem(
                    file=located.file,
                    index=located.index,
                    record_id=record.key,
                    message=f"duplicate of {earlier.file} record {earlier.index}",
                )
            )
            continue
        seen_keys[record.key] = located
        if not known(located):
            continue
        if record.plan_id in rules.paid_plan_ids:
            problems.extend(_paid_problems(located, in_file.get(record.customer_id), stigg_customer))
            paid.append((subscription_id_for(record), record))
        else:
            bulk.append((subscription_id_for(record), record))
    usage_records = [located.record for located in usage if known(located)]
    if problems:
        raise problems_error(problems)
    return ImportPlan(
        customers=chunked([c.record for c in customers], rules.customers_per_call),
        subscriptions=chunked(bulk, rules.subscriptions_per_call),
        paid=paid,
        usage=chunked(usage_records, rules.usages_per_chunk),
    )


def _paid_problems(
    located: Located[SubscriptionRecord],
    customer: CustomerRecord | None,
    stigg_customer: Callable[[str], StiggCustomer | None],
) -> list[FileProblem]:
    record = located.record
    found: list[FileProblem] = []

    def problem(field_name: str, message: str) -> None:
        found.append(
            FileProblem(file=located.file, index=located.index, record_id=record.key, field=field_name, message=message)
        )

    if customer is not None:
        has_payment_method = customer.payment_method_id is not None
    else:
        existing = stigg_customer(record.customer_id)
        has_payment_method = existing is not None and existing.has_payment_method
    if not has_payment_method:
        problem(
            "customerId",
            f"paid plan {record.plan_id!r} but customer {record.customer_id!r} has no paymentMethodId "
            "(Stigg would answer PAYMENT_REQUIRED)",
        )
    if not record.billing_id:
        problem("billingId", "a paid plan must name the Stripe subscription it replaces (sub_...), to cancel it")
    elif not record.billing_id.startswith("sub_"):
        problem("billingId", f"{record.billing_id!r} is not a Stripe subscription id (sub_...)")
    if record.start_date is None:
        problem("startDate", "a paid plan is backdated to the Stripe subscription's start: give its startDate")
    return found
