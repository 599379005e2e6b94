"""What the Stigg import needs from Stigg, as an interface the adapter implements (Stripe: `billmig.stripe_source`).

The domain never sees GraphQL or HTTP; tests run the real adapters against the emulators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord


@dataclass(frozen=True)
class StiggCustomer:
    customer_id: str
    email: str | None
    name: str | None
    billing_id: str | None
    has_payment_method: bool
    created_at: datetime | None
    updated_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StiggSubscription:
    subscription_id: str
    plan_id: str
    status: str
    start_date: datetime | None
    resource_id: str | None = None
    addons: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageReading:
    customer_id: str
    feature_id: str
    resource_id: str | None
    current_usage: float


@dataclass(frozen=True)
class ImportTask:
    """A subscription import as Stigg ran it: PENDING until applied, then each refused row's id and reason."""

    task_id: str
    status: str
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.status in ("PENDING", "IN_PROGRESS")


@dataclass(frozen=True)
class PaidProvision:
    """A paid plan provisioned backdated in Stigg; Stripe goes on billing until its subscription is cancelled."""

    record: SubscriptionRecord
    subscription_id: str
    stripe_subscription_id: str
    migration_id: str


class StiggTarget(Protocol):
    def import_customers(self, customers: Sequence[CustomerRecord]) -> None: ...

    def import_subscriptions(self, subscriptions: Sequence[tuple[str, SubscriptionRecord]]) -> str | None:
        """Each row with its deterministic subscription id; returns Stigg's task id (the import is asynchronous)."""
        ...

    def report_usage(self, usages: Sequence[tuple[str, UsageRecord]]) -> list[UsageReading]:
        """SET each usage, each with its idempotency key; returns the current usage Stigg answered."""
        ...

    def find_customer(self, customer_id: str) -> StiggCustomer | None: ...

    def active_subscriptions(self, customer_id: str, resource_id: str | None) -> list[StiggSubscription]: ...

    def find_subscription(self, subscription_id: str) -> StiggSubscription | None: ...

    def customers_by_id(self, customer_ids: Sequence[str]) -> dict[str, StiggCustomer]:
        """The customers Stigg has among these ids, read in pages; an id Stigg does not have is not a key."""
        ...

    def subscriptions_by_id(self, subscription_ids: Sequence[str]) -> dict[str, StiggSubscription]:
        """The subscriptions Stigg has among these ids, read in pages; an id Stigg does not have is not a key."""
        ...

    def live_subscriptions_of(self, customer_ids: Sequence[str]) -> dict[str, list[StiggSubscription]]:
        """Each customer's ACTIVE and IN_TRIAL subscriptions, resource-scoped ones included, read in pages; every
        id given is a key (an empty list: none, or no such customer)."""
        ...

    def existing_customer_ids(self, customer_ids: Sequence[str]) -> set[str]:
        """Which of these customers Stigg has: one call when it has none or all of them."""
        ...

    def existing_subscription_ids(self, subscription_ids: Sequence[str]) -> set[str]:
        """Which of these subscriptions Stigg has: one call when it has none or all of them."""
        ...

    def import_task(self, task_id: str) -> ImportTask | None:
        """The asynchronous subscription import `import_subscriptions` started, as Stigg reports it."""
        ...

    def provision_paid(self, provision: PaidProvision) -> StiggSubscription:
        """Raises `PaymentRequired`, or `SubscriptionExists` when Stigg already has one for the product."""
        ...
