"""Building Stigg import records from Stripe (`billmig stigg import --from-stripe`).

A mapping file says what each Stripe price becomes in Stigg: a plan, an add-on (its quantity carried over) or a
metered feature (its current-period usage carried over, summed when several prices, e.g. one per region, feed one
feature). The records produced are the guide's, so they go through exactly the checks a hand-written file does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from billmig.stripe_source.port import StripeSource


class PriceTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str | None = None
    addon: str | None = None
    feature: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PriceTarget:
        if sum(v is not None for v in (self.plan, self.addon, self.feature)) != 1:
            raise ValueError("map a price to exactly one of plan, addon, feature")
        return self


class StripeMapping(BaseModel):
    """The `--config` file of `--from-stripe`. Prices are named by lookup key or by id."""

    model_config = ConfigDict(extra="forbid")

    prices: dict[str, PriceTarget]
    paid_plans: list[str] = Field(default_factory=list)
    default_plan: str | None = Field(default=None, description="Plan for subscriptions whose prices name no plan")
    customer_id_from: Literal["id", "metadata"] = "metadata"
    customer_id_metadata_key: str = "internal_customer_id"
    statuses: list[str] = Field(default_factory=lambda: ["active", "trialing", "past_due"])


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def records_from_stripe(book: StripeSource, mapping: StripeMapping) -> dict[str, list[dict[str, Any]]]:
    """{"customers": [...], "subscriptions": [...], "usages": [...]} in the guide's schemas; usage is each metered
    item's current period so far, as Stripe would bill it."""
    customers: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    usages: dict[tuple[str, str], float] = {}
    for customer in book.customers(mapping.statuses):
        if mapping.customer_id_from == "metadata":
            customer_id = customer.metadata.get(mapping.customer_id_metadata_key) or customer.id
        else:
            customer_id = customer.id
        record: dict[str, Any] = {
            "customerId": customer_id,
            "email": customer.email,
            "name": customer.name,
            "billingId": customer.id,
            "metadata": {"stripeCustomerId": customer.id},
        }
        if customer.default_payment_method:
            record["paymentMethodId"] = customer.default_payment_method
        customers.append({k: v for k, v in record.items() if v is not None})
        for subscription in customer.subscriptions:
            plan: str | None = None
            interval: str | None = None
            addons: list[dict[str, Any]] = []
            for item in subscription.items:
                target = mapping.prices.get(item.lookup_key or "") or mapping.prices.get(item.price_id)
                if target is None:
                    continue
                if target.plan:
                    plan, interval = target.plan, item.interval
                elif target.addon:
                    addons.append({"addonId": target.addon, "quantity": item.quantity})
                elif target.feature and item.meter_id:
                    used = book.metered_usage(item.meter_id, customer.id, item.period_start, item.period_end)
                    usages[(customer_id, target.feature)] = usages.get((customer_id, target.feature), 0.0) + used
            plan = plan or mapping.default_plan
            if plan is None:
                continue
            row: dict[str, Any] = {
                "customerId": customer_id,
                "planId": plan,
                "startDate": _iso(subscription.start_date),
                "additionalMetaData": {"stripeSubscriptionId": subscription.id},
            }
            if plan in mapping.paid_plans:
                row["billingId"] = subscription.id
                row["billingPeriod"] = "ANNUALLY" if interval == "year" else "MONTHLY"
            if addons:
                row["addons"] = addons
            subscriptions.append(row)
    usage_rows = [
        {"customerId": customer_id, "featureId": feature, "usage": value}
        for (customer_id, feature), value in sorted(usages.items())
    ]
    return {"customers": customers, "subscriptions": subscriptions, "usages": usage_rows}
