"""Reported usage: `reportUsageBulk` (SET / DELTA, idempotency keys kept 7 days) and the usage history read.

Current usage is kept per customer, resource, feature and usage period. The period is the monthly reset period of
the customer's active subscription that grants the feature (anchored at its start date, Stigg's default); without
such a subscription usage accumulates with no period. Only metered features whose usage the customer calculates
(no events meter) accept reports, and the customer must exist.
"""

from __future__ import annotations

from typing import Any

from . import customers, datetimes, product_catalogue, subscriptions
from .environment import Environment
from .errors import BAD_USER_INPUT, METERED_WITH_EVENTS, NOT_METERED, StiggError
from .product_catalogue import ADDON, PLAN

USAGE_TOTAL = "usage_total"
MEASUREMENT = "usage_measurement"
IDEMPOTENCY_KEY = "usage_idempotency_key"
IDEMPOTENCY_SECONDS = 7 * 86_400


def _grants(env: Environment, subscription: dict[str, Any], feature_ref: str) -> dict[str, Any] | None:
    for entitlement in subscription.get("entitlements") or []:
        if entitlement["featureRefId"] == feature_ref:
            return dict(entitlement)
    packages = [env.get(PLAN, subscription["planRefId"])]
    packages += [env.get(ADDON, a["addonRefId"]) for a in subscription.get("addons") or []]
    for package in packages:
        for entitlement in (package or {}).get("entitlements", []):
            if entitlement["featureRefId"] == feature_ref:
                return dict(entitlement)
    return None


def period(
    env: Environment, customer_id: str, resource_id: str | None, feature_ref: str, at: float
) -> tuple[float | None, float | None]:
    """(start, end) of the usage period `at` falls in, or (None, None) when no active subscription grants it."""
    for subscription in subscriptions.active(env, customer_id, None):
        if subscription.get("resourceId") != resource_id:
            continue
        entitlement = _grants(env, subscription, feature_ref)
        if entitlement is None:
            continue
        if (entitlement.get("resetPeriod") or "MONTH") != "MONTH":
            return None, None
        return datetimes.monthly_period(subscription["startDate"], at)
    return None, None


def _total_key(customer_id: str, resource_id: str | None, feature_ref: str, start: float | None) -> str:
    return f"{customer_id}|{resource_id or ''}|{feature_ref}|{'' if start is None else int(start)}"


def current_usage(env: Environment, customer_id: str, resource_id: str | None, feature_ref: str) -> float:
    start, _end = period(env, customer_id, resource_id, feature_ref, env.now())
    total = env.get(USAGE_TOTAL, _total_key(customer_id, resource_id, feature_ref, start))
    return 0.0 if total is None else float(total["value"])


def report_bulk(env: Environment, data: dict[str, Any]) -> list[dict[str, Any]]:
    usages = data["usages"]
    env.limits.check_size("usages", len(usages), env.limits.values.usages_per_call)
    env.limits.take("reportUsage", env.limits.values.report_usage_per_minute, env.now(), "usage reporting")
    for index, usage in enumerate(usages):  # the whole call is refused before anything is recorded
        customers.existing(env, usage["customerId"])
        feature = product_catalogue.feature(env, usage["featureId"])
        if feature["meterType"] == "None":
            raise StiggError(NOT_METERED, f"usages[{index}]: feature {feature['refId']!r} is not metered")
        if not product_catalogue.is_calculated_metered(feature):
            raise StiggError(
                METERED_WITH_EVENTS, f"usages[{index}]: feature {feature['refId']!r} is metered from events"
            )
    return [_report_one(env, usage, index) for index, usage in enumerate(usages)]


def _report_one(env: Environment, usage: dict[str, Any], index: int) -> dict[str, Any]:
    now = env.now()
    key = usage.get("idempotencyKey")
    if key:
        seen = env.get(IDEMPOTENCY_KEY, key)
        if seen is not None and seen["at"] > now - IDEMPOTENCY_SECONDS:
            replayed = dict(env.get(MEASUREMENT, seen["measurementId"]) or {})
            replayed["currentUsage"] = current_usage(
                env, replayed["customerId"], replayed.get("resourceId"), replayed["featureId"]
            )
            return replayed
    customer_id, resource_id, feature_ref = usage["customerId"], usage.get("resourceId"), usage["featureId"]
    value = round(float(usage["value"]), 5)
    created_at = datetimes.parse(usage.get("createdAt"), f"usages[{index}].createdAt")
    at = now if created_at is None else created_at
    start, end = period(env, customer_id, resource_id, feature_ref, at)
    total_key = _total_key(customer_id, resource_id, feature_ref, start)
    before = float((env.get(USAGE_TOTAL, total_key) or {"value": 0.0})["value"])
    behavior = usage.get("updateBehavior") or "DELTA"
    after = value if behavior == "SET" else before + value
    if after < 0:
        raise StiggError(BAD_USER_INPUT, f"usages[{index}]: usage would become negative ({after})")
    env.store.put(USAGE_TOTAL, total_key, {"value": after})
    measurement = {
        "id": env.new_id(),
        "customerId": customer_id,
        "resourceId": resource_id,
        "featureId": feature_ref,
        "value": value,
        "updateBehavior": behavior,
        "currentUsage": after,
        "usagePeriodStart": start,
        "usagePeriodEnd": end,
        "nextResetDate": end,
        "timestamp": at,
        "createdAt": now,
        "idempotencyKey": key,
    }
    env.store.put(MEASUREMENT, measurement["id"], measurement)
    if key:
        env.store.put(IDEMPOTENCY_KEY, key, {"at": now, "measurementId": measurement["id"]})
    return measurement


def history(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    """`usageHistory`: one point per report in [startDate, endDate), valued at the usage after that report."""
    customer_id, feature_ref = data["customerRefId"], data["featureRefId"]
    customers.existing(env, customer_id)
    product_catalogue.feature(env, feature_ref)
    start = datetimes.parse(data["startDate"], "usageHistoryInput.startDate")
    end = datetimes.parse(data.get("endDate"), "usageHistoryInput.endDate")
    assert start is not None
    points = []
    last_period: float | None = None
    for measurement in env.store.all(MEASUREMENT):
        if measurement["customerId"] != customer_id or measurement["featureId"] != feature_ref:
            continue
        if measurement.get("resourceId") != data.get("resourceRefId"):
            continue
        if measurement["timestamp"] < start or (end is not None and measurement["timestamp"] >= end):
            continue
        reset = last_period is not None and measurement["usagePeriodStart"] != last_period
        last_period = measurement["usagePeriodStart"]
        points.append({"date": measurement["timestamp"], "value": measurement["currentUsage"], "isResetPoint": reset})
    return {"startDate": start, "endDate": end, "markers": [], "usageMeasurements": points, "groups": None}
