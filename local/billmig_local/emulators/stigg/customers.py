"""Customers: `importCustomersBulk` upserts by customer id, honouring the `updatedAt` skip rule."""

from __future__ import annotations

from typing import Any

from . import datetimes
from .environment import Environment
from .errors import CUSTOMER_NOT_FOUND, StiggError

CUSTOMER = "customer"
IMPORT_TASK = "import_task"

_COPIED = ("email", "name", "billingId", "salesforceId")


def import_bulk(env: Environment, data: dict[str, Any]) -> str:
    """Apply every row at once (Stigg's customer import is synchronous); the reply is a task id.

    A row whose existing customer was updated after the row's `updatedAt` is skipped; rows without a customer id are
    skipped. What happened to each row is kept in the task record (`/_emulator/stigg/tasks/<id>`).
    """
    rows = data["customers"]
    env.limits.check_size("customers", len(rows), env.limits.values.import_customers_per_call)
    env.limits.take("importCustomersBulk", env.limits.values.import_customers_per_minute, env.now(), "customer import")
    created: list[str] = []
    updated: list[str] = []
    skipped: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        customer_id = row.get("customerId") or row.get("refId")
        if not customer_id:
            skipped.append({"index": index, "customerId": None, "reason": "customerId is required"})
            continue
        row_updated_at = datetimes.parse(row.get("updatedAt"), f"customers[{index}].updatedAt")
        existing = env.get(CUSTOMER, customer_id)
        if existing is not None and row_updated_at is not None and existing["updatedAt"] > row_updated_at:
            skipped.append({"index": index, "customerId": customer_id, "reason": "updated after updatedAt"})
            continue
        upsert(env, customer_id, row)
        (updated if existing is not None else created).append(customer_id)
    task_id = env.new_id()
    env.store.put(
        IMPORT_TASK,
        task_id,
        {
            "taskId": task_id,
            "kind": "customers",
            "status": "COMPLETED",
            "created": created,
            "updated": updated,
            "skipped": skipped,
        },
    )
    return task_id


def upsert(env: Environment, customer_id: str, row: dict[str, Any]) -> dict[str, Any]:
    now = env.now()
    record = env.get(CUSTOMER, customer_id) or {
        "id": env.new_id(),
        "customerId": customer_id,
        "createdAt": now,
        "additionalMetaData": None,
        "paymentMethodId": None,
    }
    for key in _COPIED:
        if key in row:
            record[key] = row[key]
    if row.get("paymentMethodId") is not None:
        record["paymentMethodId"] = row["paymentMethodId"]  # becomes the default payment method
    if row.get("additionalMetaData") is not None:
        record["additionalMetaData"] = row["additionalMetaData"]  # replaces; omitted keeps the old
    record["updatedAt"] = now
    return env.store.put(CUSTOMER, customer_id, record)


def existing(env: Environment, customer_id: str) -> dict[str, Any]:
    found = env.get(CUSTOMER, customer_id)
    if found is None:
        raise StiggError(CUSTOMER_NOT_FOUND, f"Customer not found: {customer_id}")
    return found
