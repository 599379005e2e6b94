"""A generated book of customers in Stigg's import-file schemas, for the import's tests and its benchmark."""

from __future__ import annotations

from typing import Any


def generated_book(n: int) -> dict[str, list[dict[str, Any]]]:
    """A deterministic book of `n` customers: every tenth on a custom plan with limits and add-ons, the rest free,
    and usage of two calculated-usage features for each."""
    customers, free, custom, usage = [], [], [], []
    for i in range(n):
        customer_id = f"book-{i:05d}"
        customers.append({"customerId": customer_id, "email": f"{customer_id}@example.com", "name": f"Customer {i}"})
        if i % 10 == 0:
            custom.append(
                {
                    "customerId": customer_id,
                    "planId": "plan-enterprise",
                    "startDate": "2026-02-01T00:00:00Z",
                    "subscriptionEntitlements": [{"featureId": "feature-api-calls", "usageLimit": 10_000 + i}],
                    "addons": [{"addonId": "addon-extra-seats", "quantity": 1 + i % 4}],
                }
            )
        else:
            free.append({"customerId": customer_id, "planId": "plan-free"})
        usage.append({"customerId": customer_id, "featureId": "feature-api-calls", "usage": i * 7 % 5000})
        usage.append({"customerId": customer_id, "featureId": "feature-compute-minutes", "usage": i % 300})
    return {"customers": customers, "free": free, "custom": custom, "usages": usage}
