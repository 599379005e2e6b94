"""Subscriptions: bulk import, provisioning (paid plans, backdating), cancellation and the status a read shows.

One live subscription per customer and product (per customer, product and resource when the product allows
multiple subscriptions): a second one is refused (provision) or skipped (import) naming the one that exists. A
`resourceId` is required on a multi-subscription product and kept, but not a separate slot, on a single one.
Status is computed from the dates on the emulator clock, so `billmig local clock advance` starts and ends them.
"""

from __future__ import annotations

from typing import Any

from . import customers, datetimes, product_catalogue
from .environment import Environment
from .errors import (
    BAD_USER_INPUT,
    DUPLICATED_ENTITY,
    SUBSCRIPTION_ALREADY_CANCELED,
    SUBSCRIPTION_NOT_FOUND,
    StiggError,
)
from .product_catalogue import ADDON, PLAN, PRODUCT

SUBSCRIPTION = "subscription"
IMPORT_TASK = "import_task"
PENDING_IMPORT_TASK = "pending_import_task"
LIVE_STATUSES = ("ACTIVE", "IN_TRIAL", "NOT_STARTED")


def status(record: dict[str, Any], now: float) -> str:
    if record.get("canceledAt") is not None and record["canceledAt"] <= now:
        return "CANCELED"
    if record.get("endDate") is not None and record["endDate"] <= now:
        return "EXPIRED"
    if record["startDate"] > now:
        return "NOT_STARTED"
    return "ACTIVE"


def for_customer(env: Environment, customer_id: str) -> list[dict[str, Any]]:
    found = (env.get(SUBSCRIPTION, sid) for sid in env.subscriptions_by_customer.get(customer_id, ()))
    return [s for s in found if s is not None]


def save(env: Environment, record: dict[str, Any]) -> dict[str, Any]:
    """Store a subscription and index it by customer (reads by customer must not scan every subscription)."""
    ids = env.subscriptions_by_customer.setdefault(record["customerId"], [])
    if record["subscriptionId"] not in ids:
        ids.append(record["subscriptionId"])
    return env.store.put(SUBSCRIPTION, record["subscriptionId"], record)


def active(env: Environment, customer_id: str, resource_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """What `getActiveSubscriptions` answers: ACTIVE or IN_TRIAL, optionally only for some resources."""
    now = env.now()
    return [
        s
        for s in for_customer(env, customer_id)
        if status(s, now) in ("ACTIVE", "IN_TRIAL") and (resource_ids is None or s.get("resourceId") in resource_ids)
    ]


def _conflicting(
    env: Environment, customer_id: str, product_ref: str, resource_id: str | None, own_id: str | None
) -> dict[str, Any] | None:
    """The live subscription a new one would collide with: per customer on a single-subscription product, per
    customer and resource on a multi-subscription one."""
    now = env.now()
    per_resource = bool((env.get(PRODUCT, product_ref) or {}).get("multipleSubscriptions"))
    for existing in for_customer(env, customer_id):
        if (
            existing["productRefId"] == product_ref
            and (not per_resource or existing.get("resourceId") == resource_id)
            and existing["subscriptionId"] != own_id
            and status(existing, now) in LIVE_STATUSES
        ):
            return existing
    return None


def _entitlements(env: Environment, row: dict[str, Any]) -> list[dict[str, Any]]:
    """`subscriptionEntitlements` (deprecated) and `entitlements[].feature` (V2) as one list of feature limits."""
    items = list(row.get("subscriptionEntitlements") or [])
    for item in row.get("entitlements") or []:
        if item.get("credit") is not None:
            raise StiggError(BAD_USER_INPUT, "credit entitlements are not supported by this emulator")
        if item.get("feature") is not None:
            items.append(item["feature"])
    result = []
    for item in items:
        product_catalogue.feature(env, item["featureId"])
        result.append(
            {
                "id": env.new_id(),
                "featureRefId": item["featureId"],
                "usageLimit": item.get("usageLimit"),
                "hasUnlimitedUsage": item.get("hasUnlimitedUsage"),
                "hasSoftLimit": item.get("hasSoftLimit"),
                "resetPeriod": item.get("resetPeriod"),
                "description": item.get("description"),
            }
        )
    return result


def _addons(env: Environment, plan: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for item in row.get("addons") or []:
        addon = product_catalogue.published(env, ADDON, item["addonId"])
        if addon["productRefId"] != plan["productRefId"]:
            raise StiggError("IncompatibleSubscriptionAddon", f"add-on {addon['refId']!r} is for another product")
        quantity = item.get("quantity") if item.get("quantity") is not None else 1
        if quantity < 1 or (addon.get("maxQuantity") is not None and quantity > addon["maxQuantity"]):
            raise StiggError("InvalidQuantity", f"add-on {addon['refId']!r}: quantity {quantity} is not allowed")
        result.append({"id": env.new_id(), "addonRefId": addon["refId"], "quantity": quantity})
    return result


def build(env: Environment, row: dict[str, Any], source: str, field: str) -> dict[str, Any]:
    """Check one subscription input against customers and catalogue; the record to store (not yet stored)."""
    customer = customers.existing(env, row["customerId"])
    plan = product_catalogue.published(env, PLAN, row["planId"])
    product = env.get(PRODUCT, plan["productRefId"]) or {}
    resource_id = row.get("resourceId")
    if product.get("multipleSubscriptions") and not resource_id:
        raise StiggError(BAD_USER_INPUT, f"resourceId is required: product {product.get('refId')!r} allows many")
    if product_catalogue.is_paid(plan) and not row.get("billingPeriod"):
        raise StiggError("BillingPeriodMissingError", f"billingPeriod is required for paid plan {plan['refId']!r}")
    entitlements = _entitlements(env, row)
    if entitlements and plan.get("pricingType") != "CUSTOM":
        raise StiggError("CannotAddOverrideEntitlementToPlan", "per-subscription entitlements need a custom plan")
    now = env.now()
    start = datetimes.parse(row.get("startDate"), f"{field}.startDate")
    end = datetimes.parse(row.get("endDate"), f"{field}.endDate")
    start = now if start is None else start
    if end is not None and end <= start:
        raise StiggError(BAD_USER_INPUT, f"{field}.endDate must be after startDate")
    subscription_id = row.get("subscriptionId") or row.get("refId") or f"subscription-{plan['refId']}-{env.new_id()}"
    return {
        "id": env.new_id(),
        "subscriptionId": subscription_id,
        "customerId": customer["customerId"],
        "planRefId": plan["refId"],
        "productRefId": plan["productRefId"],
        "pricingType": plan.get("pricingType") or "FREE",
        "resourceId": resource_id,
        "startDate": start,
        "endDate": end,
        "canceledAt": None,
        "cancellationDate": None,
        "billingPeriod": row.get("billingPeriod"),
        "billingId": row.get("billingId"),
        "unitQuantity": row.get("unitQuantity"),
        "additionalMetaData": row.get("additionalMetaData"),
        "billingInformation": row.get("billingInformation"),
        "addons": _addons(env, plan, row),
        "entitlements": entitlements,
        "source": source,
        "createdAt": now,
        "updatedAt": now,
    }


def import_bulk(env: Environment, data: dict[str, Any]) -> str:
    """Rows are upserted by `subscriptionId`; invalid rows are skipped without failing the batch, as Stigg does.

    Stigg runs the import as a background task and answers only its id. Here the task runs before the reply, or, with
    `subscription_import_delay_seconds` set (`POST /_emulator/stigg/limits`), once the world clock has moved that far,
    so a caller's polling can be exercised. Each skipped row's reason is kept in the task record
    (`GET /_emulator/stigg/tasks/<taskId>`).
    """
    rows = data["subscriptions"]
    env.limits.check_size("subscriptions", len(rows), env.limits.values.import_subscriptions_per_call)
    env.limits.take(
        "importSubscriptionsBulk", env.limits.values.import_subscriptions_per_minute, env.now(), "subscription import"
    )
    task_id = env.new_id()
    task = {
        "taskId": task_id,
        "kind": "subscriptions",
        "status": "PENDING",
        "createdAt": env.now(),
        "dueAt": env.now() + env.limits.values.subscription_import_delay_seconds,
        "rowCount": len(rows),
        "customersCount": len({row.get("customerId") for row in rows}),
        "rows": rows,
    }
    env.store.put(PENDING_IMPORT_TASK, task_id, task)
    run_due_imports(env)
    return task_id


def run_due_imports(env: Environment) -> None:
    """Apply the pending import tasks whose time has come, oldest first (called before every execution)."""
    if not env.store.count(PENDING_IMPORT_TASK):
        return
    now = env.now()
    for task in env.store.all(PENDING_IMPORT_TASK):
        if task["dueAt"] > now:
            continue
        imported, skipped = _apply_import(env, task["rows"])
        carried: dict[str, Any] = {
            k: task[k] for k in ("taskId", "kind", "createdAt", "rowCount", "customersCount") if k in task
        }
        result = {
            **carried,
            "status": "COMPLETED",
            "completedAt": now,
            "imported": imported,
            "skipped": skipped,
        }
        env.store.put(IMPORT_TASK, task["taskId"], result)
        env.store.delete(PENDING_IMPORT_TASK, task["taskId"])


def _apply_import(env: Environment, rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    imported: list[str] = []
    skipped: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        field = f"subscriptions[{index}]"
        try:
            record = build(env, row, "import", field)
            if not (row.get("subscriptionId") or row.get("refId")):
                same_plan = _live_on_plan(env, record)  # no id given: the customer's subscription to this plan
                if same_plan is not None:
                    record["subscriptionId"] = same_plan["subscriptionId"]
            existing = env.get(SUBSCRIPTION, record["subscriptionId"])
            row_updated_at = datetimes.parse(row.get("updatedAt"), f"{field}.updatedAt")
            if existing is not None and row_updated_at is not None and existing["updatedAt"] > row_updated_at:
                skipped.append(
                    {
                        "index": index,
                        "subscriptionId": existing["subscriptionId"],
                        "code": "Skipped",
                        "reason": "updated after updatedAt",
                    }
                )
                continue
            conflict = _conflicting(
                env, record["customerId"], record["productRefId"], record["resourceId"], record["subscriptionId"]
            )
            if conflict is not None:
                raise StiggError(DUPLICATED_ENTITY, _conflict_message(conflict))
            if existing is not None:
                record["id"], record["createdAt"] = existing["id"], existing["createdAt"]
            save(env, record)
            imported.append(record["subscriptionId"])
        except StiggError as exc:
            skipped.append(
                {
                    "index": index,
                    "customerId": row.get("customerId"),
                    "planId": row.get("planId"),
                    "code": exc.code,
                    "reason": exc.message,
                }
            )
    return imported, skipped


def _live_on_plan(env: Environment, record: dict[str, Any]) -> dict[str, Any] | None:
    now = env.now()
    for existing in for_customer(env, record["customerId"]):
        if (
            existing["planRefId"] == record["planRefId"]
            and existing.get("resourceId") == record["resourceId"]
            and status(existing, now) in LIVE_STATUSES
        ):
            return existing
    return None


def _conflict_message(existing: dict[str, Any]) -> str:
    resource = f", resource {existing['resourceId']!r}" if existing.get("resourceId") else ""
    return (
        f"customer {existing['customerId']!r} already has active subscription {existing['subscriptionId']!r} "
        f"to product {existing['productRefId']!r}{resource}"
    )


def provision(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    """`provisionSubscription(V2)`: PAYMENT_REQUIRED (no subscription made) for a paid plan without payment method."""
    limits = env.limits.values
    now = env.now()
    env.limits.take("provision", limits.provision_per_minute, now, "provisionSubscription")
    key = data["customerId"] + (f":{data['resourceId']}" if data.get("resourceId") else "")
    env.limits.take(f"provision:{key}", limits.provision_per_minute_per_customer, now, f"provisioning for {key}")
    record = build(env, data, "provision", "input")
    plan = product_catalogue.published(env, PLAN, record["planRefId"])
    customer = customers.existing(env, record["customerId"])
    existing = env.get(SUBSCRIPTION, record["subscriptionId"])
    conflict = _conflicting(env, record["customerId"], record["productRefId"], record["resourceId"], None)
    if conflict is not None:
        raise StiggError(DUPLICATED_ENTITY, _conflict_message(conflict), subscriptionId=conflict["subscriptionId"])
    if existing is not None:
        message = f"subscription {existing['subscriptionId']!r} already exists ({status(existing, env.now())})"
        raise StiggError(DUPLICATED_ENTITY, message, subscriptionId=existing["subscriptionId"])
    charged = (data.get("paymentCollectionMethod") or "CHARGE") == "CHARGE"  # INVOICE / NONE need no card
    if product_catalogue.is_paid(plan) and charged and not customer.get("paymentMethodId"):
        return {"id": record["subscriptionId"], "status": "PAYMENT_REQUIRED", "subscription": None}
    record["paymentCollectionMethod"] = data.get("paymentCollectionMethod")
    save(env, record)
    return {"id": record["subscriptionId"], "status": "SUCCESS", "subscription": record}


def existing(env: Environment, subscription_id: str) -> dict[str, Any]:
    found = env.get(SUBSCRIPTION, subscription_id)
    if found is None:
        raise StiggError(SUBSCRIPTION_NOT_FOUND, f"Subscription not found: {subscription_id}")
    return found


def cancel(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    record = existing(env, data["subscriptionRefId"])
    now = env.now()
    if status(record, now) in ("CANCELED", "EXPIRED") or record.get("canceledAt") is not None:
        raise StiggError(SUBSCRIPTION_ALREADY_CANCELED, f"subscription {record['subscriptionId']!r} already ended")
    when = data.get("subscriptionCancellationTime") or "END_OF_BILLING_PERIOD"
    if when == "IMMEDIATE":
        at = now
    elif when == "SPECIFIC_DATE":
        specific = datetimes.parse(data.get("endDate"), "input.endDate")
        if specific is None:
            raise StiggError("InvalidCancellationDate", "endDate is required with SPECIFIC_DATE")
        at = specific
    else:
        at = max(now, datetimes.monthly_period(record["startDate"], now)[1])
    record["canceledAt"] = at
    record["cancellationDate"] = now
    record["updatedAt"] = now
    return save(env, record)
