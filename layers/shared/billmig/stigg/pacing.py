"""Stigg's published rate limits, and the pacer every Stigg call of an import goes through.

Limits (docs.stigg.io .../rest/rate-limits, .../graphql/rate-limits; "both limits apply"): customer and subscription
imports 250 calls a minute (1,000 records each), usage 600 a minute (100 records each), provisioning 250 a minute and
30 a minute per customer, the `subscriptions` list 1,500 a minute (`customers` gets the same; none published). Stigg
counts a sliding minute, so the pacer keeps each limit's recent send instants where every concurrent Task of every
import sees them (the progress table) and hands out only instants that keep every minute within the limit: the import
itself never causes a 429. One that still comes (someone else spending the same key's allowance) cools the limit down
for everyone, on the world clock, before Step Functions retries the Task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    name: str
    per_minute: int


IMPORT_CUSTOMERS = Limit("importCustomersBulk", 250)
IMPORT_SUBSCRIPTIONS = Limit("importSubscriptionsBulk", 250)
REPORT_USAGE = Limit("reportUsageBulk", 600)
PROVISION = Limit("provisionSubscription", 250)
PROVISION_PER_CUSTOMER = 30
LIST_CUSTOMERS = Limit("customers", 1500)
LIST_SUBSCRIPTIONS = Limit("subscriptions", 1500)
CUSTOMER_ROUTE_PER_CUSTOMER = 30  # customer-entity reads, per customer

_BY_OPERATION: dict[str, tuple[Limit, ...]] = {
    "importCustomersBulk": (IMPORT_CUSTOMERS,),
    "importSubscriptionsBulk": (IMPORT_SUBSCRIPTIONS,),
    "reportUsageBulk": (REPORT_USAGE,),
    "customers": (LIST_CUSTOMERS,),
    "subscriptions": (LIST_SUBSCRIPTIONS,),
}


def limits_for(operation: str, customer_key: str | None = None) -> tuple[Limit, ...]:
    """The limits one call of a GraphQL operation spends (`customer_key`: `customerId[:resourceId]`)."""
    if operation == "provisionSubscriptionV2":
        return (PROVISION, Limit(f"provisionSubscription:{customer_key}", PROVISION_PER_CUSTOMER))
    if operation in ("getCustomerByRefId", "getActiveSubscriptions") and customer_key:
        return (Limit(f"customer:{customer_key}", CUSTOMER_ROUTE_PER_CUSTOMER),)
    return _BY_OPERATION.get(operation, ())


class Pacer(Protocol):
    def acquire(self, limits: Sequence[Limit]) -> None:
        """Return when one call may be sent within every limit (waiting on the world clock), the slot taken."""
        ...

    def throttled(self, limits: Sequence[Limit]) -> None:
        """Stigg answered 429 all the same: every Task on these limits backs off for a while."""
        ...


class Unpaced:
    """For callers that are not an import (tests, a one-off lookup): no pacing."""

    def acquire(self, limits: Sequence[Limit]) -> None:
        return None

    def throttled(self, limits: Sequence[Limit]) -> None:
        return None
