"""The list queries `customers`, `subscriptions` and `importIntegrationTasks`: what each filters and sorts on.

The mechanics (comparisons, sorting, cursor paging, the page size limit) are `listing.py`'s. Here: each query's
filterable fields as the emulator stores them, the records a filter on ids narrows the read to (a chunk's read-back
must not scan the whole environment), and the per-minute limits: `subscriptions` 1,500 (docs.stigg.io .../graphql/
rate-limits); `customers` has none published and gets the same; `importIntegrationTasks` none.
Every list is of this one environment: `environmentId` filters compare with its id.
"""

from __future__ import annotations

from typing import Any

from . import listing, subscriptions, wire_shapes
from .customers import CUSTOMER
from .environment import Environment
from .listing import Field, Fields, Record, Relation, date_key, key
from .product_catalogue import PLAN
from .subscriptions import IMPORT_TASK, PENDING_IMPORT_TASK, SUBSCRIPTION


def _environment(env: Environment) -> Field:
    return Field(lambda _r: env.environment_id)


def _customer_fields(env: Environment) -> Fields:
    return {
        "id": key("id"),
        "customerId": key("customerId"),
        "refId": key("customerId"),
        "email": key("email"),
        "name": key("name"),
        "billingId": key("billingId"),
        "salesforceId": key("salesforceId"),
        "createdAt": date_key("createdAt"),
        "updatedAt": date_key("updatedAt"),
        "deletedAt": date_key("deletedAt"),  # never set: the emulator archives no customer
        "environmentId": _environment(env),
    }


def _status(env: Environment) -> Field:
    return Field(lambda r: subscriptions.status(r, env.now()))


def _subscription_fields(env: Environment) -> Fields:
    """The fields of a subscription both list filters share (`SubscriptionQueryFilter`, a customer's
    `subscriptions` relation filter); `customerId` is the customer's internal id in both."""

    def customer_uuid(record: Record) -> Any:
        customer = env.get(CUSTOMER, record["customerId"])
        return None if customer is None else customer["id"]

    return {
        "id": key("id"),
        "subscriptionId": key("subscriptionId"),
        "refId": key("subscriptionId"),
        "status": _status(env),
        "pricingType": key("pricingType"),
        "billingId": key("billingId"),
        "customerId": Field(customer_uuid),
        "startDate": date_key("startDate"),
        "endDate": date_key("endDate"),
        "cancellationDate": date_key("cancellationDate"),
        "createdAt": date_key("createdAt"),
        "environmentId": _environment(env),
    }


def _plan_fields(env: Environment) -> Fields:
    return {
        "id": key("id"),
        "refId": key("refId"),
        "displayName": key("displayName"),
        "billingId": key("billingId"),
        "pricingType": key("pricingType"),
        "status": key("status"),
        "versionNumber": key("versionNumber"),
        "createdAt": date_key("createdAt"),
        "updatedAt": date_key("updatedAt"),
        "environmentId": _environment(env),
    }


def _one(record: Record | None) -> list[Record]:
    return [] if record is None else [record]


def _subscription_query_fields(env: Environment) -> Fields:
    customer_fields = _customer_fields(env)
    return {
        **_subscription_fields(env),
        "resourceId": key("resourceId"),
        "customer": Relation(lambda r: _one(env.get(CUSTOMER, r["customerId"])), customer_fields),
        "plan": Relation(lambda r: _one(env.get(PLAN, r["planRefId"])), _plan_fields(env)),
        "resource": Relation(
            lambda r: [{"resourceId": r["resourceId"], "createdAt": r["createdAt"]}] if r.get("resourceId") else [],
            {"resourceId": key("resourceId"), "createdAt": date_key("createdAt"), "environmentId": _environment(env)},
        ),
    }


def _customers_fields(env: Environment) -> Fields:
    return {
        **_customer_fields(env),
        "subscriptions": Relation(
            lambda c: subscriptions.for_customer(env, c["customerId"]), _subscription_fields(env)
        ),
    }


def _task_fields(env: Environment) -> Fields:
    return {
        "id": key("taskId"),
        "status": Field(wire_shapes.import_task_status),
        "taskType": Field(lambda _r: "IMPORT_SUBSCRIPTIONS_BULK"),
        "createdAt": date_key("createdAt"),
        "environmentId": _environment(env),
    }


def _first_known(*choices: list[str] | None) -> list[str] | None:
    return next((c for c in choices if c is not None), None)


def _present(records: Any) -> list[Record]:
    return [r for r in records if r is not None]


def customers(env: Environment, filter: Any = None, paging: Any = None, sorting: Any = None) -> Record:
    limits = env.limits.values
    listing.check_paging(paging, limits.list_page_size_max)
    env.limits.take("customers", limits.list_customers_per_minute, env.now(), "customers")
    wanted = _first_known(listing.ids_wanted(filter, "customerId"), listing.ids_wanted(filter, "refId"))
    candidates = _present(env.get(CUSTOMER, i) for i in wanted) if wanted is not None else env.store.all(CUSTOMER)
    fields = _customers_fields(env)
    found = [c for c in candidates if listing.matches(c, filter, fields, "customers.filter")]
    ordered = listing.sort(found, sorting, fields, "customers.sorting")
    return listing.connection(ordered, paging, lambda c: wire_shapes.customer(env, c), total_count=True)


def _subscription_candidates(env: Environment, filter_: dict[str, Any] | None) -> list[Record]:
    wanted = _first_known(listing.ids_wanted(filter_, "subscriptionId"), listing.ids_wanted(filter_, "refId"))
    if wanted is not None:
        return _present(env.get(SUBSCRIPTION, i) for i in wanted)
    customer_filter = (filter_ or {}).get("customer")
    customer_ids = _first_known(
        listing.ids_wanted(customer_filter, "customerId"), listing.ids_wanted(customer_filter, "refId")
    )
    if customer_ids is not None:
        return [s for cid in customer_ids for s in subscriptions.for_customer(env, cid)]
    return env.store.all(SUBSCRIPTION)


def subscriptions_list(env: Environment, filter: Any = None, paging: Any = None, sorting: Any = None) -> Record:
    limits = env.limits.values
    listing.check_paging(paging, limits.list_page_size_max)
    env.limits.take("subscriptions", limits.list_subscriptions_per_minute, env.now(), "subscriptions")
    fields = _subscription_query_fields(env)
    found = [
        s for s in _subscription_candidates(env, filter) if listing.matches(s, filter, fields, "subscriptions.filter")
    ]
    ordered = listing.sort(found, sorting, fields, "subscriptions.sorting")
    return listing.connection(ordered, paging, lambda s: wire_shapes.subscription_query(env, s), total_count=True)


def import_integration_tasks(env: Environment, filter: Any = None, paging: Any = None, sorting: Any = None) -> Record:
    """The subscription import tasks (the customer import is synchronous and has no `TaskType`)."""
    listing.check_paging(paging, env.limits.values.list_page_size_max)
    wanted = listing.ids_wanted(filter, "id")
    if wanted is not None:
        candidates = _present(env.get(IMPORT_TASK, i) or env.get(PENDING_IMPORT_TASK, i) for i in wanted)
    else:
        candidates = env.store.all(IMPORT_TASK) + env.store.all(PENDING_IMPORT_TASK)
    candidates = [t for t in candidates if t.get("kind") == "subscriptions"]
    fields = _task_fields(env)
    found = [t for t in candidates if listing.matches(t, filter, fields, "importIntegrationTasks.filter")]
    ordered = listing.sort(found, sorting, fields, "importIntegrationTasks.sorting")
    return listing.connection(ordered, paging, lambda t: wire_shapes.import_task(env, t), total_count=False)
