"""Stored records -> the object shapes of Stigg's schema (camelCase dicts graphql-core resolves field by field).

Relations that can loop (subscription -> customer -> subscriptions) are callables, resolved only when a document
selects them. Money is stored in integer cents and rendered as Stigg's `Money {amount, currency}` in units.
"""

from __future__ import annotations

from typing import Any

from . import datetimes, subscriptions
from .customers import CUSTOMER
from .environment import Environment
from .product_catalogue import ADDON, FEATURE, PLAN, PRODUCT

Shape = dict[str, Any]


def money(cents: int, currency: str = "USD") -> Shape:
    return {"amount": cents / 100, "currency": currency}


def feature(env: Environment, record: Shape) -> Shape:
    return {
        "__typename": "Feature",
        **{k: record.get(k) for k in ("id", "refId", "displayName", "description", "featureType", "meterType")},
        "featureUnits": record.get("featureUnits"),
        "featureUnitsPlural": record.get("featureUnitsPlural"),
        "additionalMetaData": record.get("additionalMetaData"),
        "featureStatus": "ACTIVE",
        "environmentId": env.environment_id,
        "hasMeter": record.get("meter") is not None,
        "createdAt": datetimes.render(record["createdAt"]),
        "updatedAt": datetimes.render(record["updatedAt"]),
    }


def _feature_ref(env: Environment, ref_id: str) -> Shape:
    record = env.get(FEATURE, ref_id)
    assert record is not None
    return feature(env, record)


def package_entitlement(env: Environment, package: Shape, entitlement: Shape, typename: str) -> Shape:
    return {
        "__typename": typename,
        "id": entitlement["id"],
        "featureId": entitlement["featureRefId"],
        "feature": _feature_ref(env, entitlement["featureRefId"]),
        "packageId": package["id"],
        "usageLimit": entitlement.get("usageLimit"),
        "hasUnlimitedUsage": entitlement.get("hasUnlimitedUsage"),
        "hasSoftLimit": entitlement.get("hasSoftLimit"),
        "resetPeriod": entitlement.get("resetPeriod"),
        "isGranted": entitlement.get("isGranted", True),
        "behavior": entitlement.get("behavior") or "Increment",
        "description": entitlement.get("description"),
        "isCustom": False,
        "hiddenFromWidgets": [],
        "enumValues": None,
        "displayNameOverride": None,
        "environmentId": env.environment_id,
    }


def price(env: Environment, package: Shape, record: Shape) -> Shape:
    return {
        "__typename": "Price",
        "id": record["id"],
        "billingModel": record["billingModel"],
        "billingPeriod": record["billingPeriod"],
        "billingCadence": record.get("billingCadence") or "RECURRING",
        "billingId": record.get("billingId"),
        "price": money(record["amountCents"], record["currency"]),
        "feature": _feature_ref(env, record["featureRefId"]) if record.get("featureRefId") else None,
        "featureId": record.get("featureRefId"),
        "isOverridePrice": False,
        "tiers": None,
        "package": lambda _info, **_: package_dto(env, package),
    }


def package_dto(env: Environment, package: Shape) -> Shape:
    return {
        "__typename": "PackageDTO",
        **{k: package.get(k) for k in ("id", "refId", "displayName", "description", "status", "type")},
        "versionNumber": package["versionNumber"],
        "pricingType": package.get("pricingType"),
        "environmentId": env.environment_id,
        "syncStates": [],
    }


def product(env: Environment, record: Shape) -> Shape:
    def packages(kind: str) -> list[Shape]:
        return [package(env, kind, p) for p in env.store.all(kind) if p["productRefId"] == record["refId"]]

    return {
        "__typename": "Product",
        **{k: record.get(k) for k in ("id", "refId", "displayName", "description", "additionalMetaData")},
        "multipleSubscriptions": record["multipleSubscriptions"],
        "environmentId": env.environment_id,
        "isDefaultProduct": False,
        "status": "PUBLISHED",
        "hasSubscriptions": False,
        "awsMarketplaceProductId": None,
        "autoCancellationRules": [],
        "productSettings": {
            "subscriptionCancellationTime": "END_OF_BILLING_PERIOD",
            "subscriptionEndSetup": "CANCEL_SUBSCRIPTION",
            "subscriptionStartSetup": "PLAN_SELECTION",
            "downgradePlan": None,
        },
        "subscriptionUpdateUsageResetCutoffRule": {"behavior": "NEVER_RESET"},
        "plans": lambda _info, **_: packages(PLAN),
        "addons": lambda _info, **_: packages(ADDON),
        "createdAt": datetimes.render(record["createdAt"]),
        "updatedAt": datetimes.render(record["updatedAt"]),
    }


def package(env: Environment, kind: str, record: Shape) -> Shape:
    product_record = env.get(PRODUCT, record["productRefId"])
    assert product_record is not None
    entitlements = record.get("entitlements", [])
    prices = [price(env, record, p) for p in record.get("prices", [])]
    shape = {
        "__typename": "Plan" if kind == PLAN else "Addon",
        **{k: record.get(k) for k in ("id", "refId", "displayName", "description", "billingId", "status", "type")},
        "additionalMetaData": record.get("additionalMetaData"),
        "versionNumber": record["versionNumber"],
        "pricingType": record.get("pricingType"),
        "environmentId": env.environment_id,
        "isLatest": True,
        "isParent": False,
        "hasSubscriptions": False,
        "hiddenFromWidgets": [],
        "maxQuantity": record.get("maxQuantity"),
        "productId": product_record["id"],
        "product": lambda _info, **_: product(env, product_record),
        "entitlements": [package_entitlement(env, record, e, "PackageEntitlement") for e in entitlements],
        "packageEntitlements": [package_entitlement(env, record, e, "PackageFeatureEntitlement") for e in entitlements],
        "inheritedEntitlements": [],
        "inheritedPackageEntitlements": [],
        "prices": prices,
        "overagePrices": [],
        "compatibleAddons": lambda _info, **_: [
            package(env, ADDON, a) for a in env.store.all(ADDON) if a["productRefId"] == record["productRefId"]
        ],
        "compatiblePackageGroups": [],
        "dependencies": [],
        "basePlan": None,
        "defaultTrialConfig": None,
        "createdAt": datetimes.render(record["createdAt"]),
        "updatedAt": datetimes.render(record["updatedAt"]),
    }
    return shape


def customer(env: Environment, record: Shape) -> Shape:
    now = env.now()
    live = [
        s for s in subscriptions.for_customer(env, record["customerId"]) if subscriptions.status(s, now) == "ACTIVE"
    ]
    return {
        "__typename": "Customer",
        "id": record["id"],
        "customerId": record["customerId"],
        "refId": record["customerId"],
        **{k: record.get(k) for k in ("name", "email", "billingId", "salesforceId", "additionalMetaData")},
        "defaultPaymentMethodId": record.get("paymentMethodId"),
        "defaultPaymentMethodType": "CARD" if record.get("paymentMethodId") else None,
        "hasPaymentMethod": bool(record.get("paymentMethodId")),
        "hasActiveSubscription": bool(live),
        "hasActiveResource": any(s.get("resourceId") for s in live),
        "totalActiveSubscription": float(len(live)),
        "totalActivePromotionalEntitlements": 0.0,
        "promotionalEntitlements": [],
        "trialedPlans": [],
        "eligibleForTrial": [],
        "coupon": None,
        "experimentInfo": None,
        "awsMarketplaceCustomerId": None,
        "environmentId": env.environment_id,
        "subscriptions": lambda _info, **_: [subscription(env, s) for s in live],
        "createdAt": datetimes.render(record["createdAt"]),
        "updatedAt": datetimes.render(record["updatedAt"]),
    }


def _subscription_entitlement(env: Environment, record: Shape, entitlement: Shape, typename: str) -> Shape:
    return {
        "__typename": typename,
        "id": entitlement["id"],
        "featureId": entitlement["featureRefId"],
        "feature": _feature_ref(env, entitlement["featureRefId"]),
        "subscriptionId": record["subscriptionId"],
        "usageLimit": entitlement.get("usageLimit"),
        "hasUnlimitedUsage": entitlement.get("hasUnlimitedUsage"),
        "hasSoftLimit": entitlement.get("hasSoftLimit"),
        "resetPeriod": entitlement.get("resetPeriod"),
        "description": entitlement.get("description"),
        "environmentId": env.environment_id,
        "subscription": lambda _info, **_: subscription(env, record),
    }


def subscription(env: Environment, record: Shape) -> Shape:
    now = env.now()
    plan_record = env.get(PLAN, record["planRefId"])
    customer_record = env.get(CUSTOMER, record["customerId"])
    assert plan_record is not None and customer_record is not None
    current_end = None
    if record.get("billingPeriod") == "MONTHLY":
        current_end = datetimes.monthly_period(record["startDate"], now)[1]
    addons = []
    addon_total = 0
    for item in record.get("addons") or []:
        addon_record = env.get(ADDON, item["addonRefId"])
        assert addon_record is not None
        addon_total += sum(p["amountCents"] for p in addon_record["prices"]) * item["quantity"]
        addons.append(
            {
                "__typename": "SubscriptionAddon",
                "id": item["id"],
                "addonId": item["addonRefId"],
                "quantity": float(item["quantity"]),
                "addon": package(env, ADDON, addon_record),
                "updatedAt": datetimes.render(record["updatedAt"]),
            }
        )
    plan_prices = [p for p in plan_record["prices"] if p["billingPeriod"] == (record.get("billingPeriod") or "MONTHLY")]
    plan_total = sum(p["amountCents"] for p in plan_prices)
    ends = [t for t in (record.get("canceledAt"), record.get("endDate")) if t is not None]
    entitlements = record.get("entitlements") or []
    resource = None
    if record.get("resourceId"):
        resource = {
            "__typename": "CustomerResource",
            "resourceId": record["resourceId"],
            "environmentId": env.environment_id,
            "createdAt": datetimes.render(record["createdAt"]),
            "customer": lambda _info, **_: customer(env, customer_record),
            "subscriptions": lambda _info, **_: [
                subscription(env, s) for s in subscriptions.active(env, record["customerId"], [record["resourceId"]])
            ],
        }
    return {
        "__typename": "CustomerSubscription",
        "id": record["id"],
        "subscriptionId": record["subscriptionId"],
        "refId": record["subscriptionId"],
        "status": subscriptions.status(record, now),
        "pricingType": record["pricingType"],
        "startDate": datetimes.render(record["startDate"]),
        "endDate": datetimes.render(record.get("endDate")),
        "cancellationDate": datetimes.render(record.get("cancellationDate")),
        "effectiveEndDate": datetimes.render(min(ends) if ends else None),
        "trialEndDate": None,
        "currentBillingPeriodEnd": datetimes.render(current_end),
        "billingPeriod": record.get("billingPeriod"),
        "billingId": record.get("billingId"),
        "billingLinkUrl": None,
        "additionalMetaData": record.get("additionalMetaData"),
        "latestInvoice": None,
        "paymentCollection": "NOT_REQUIRED",
        "paymentCollectionMethod": record.get("paymentCollectionMethod")
        or ("CHARGE" if record["pricingType"] == "PAID" else "NONE"),
        "billingSyncError": None,
        "resource": resource,
        "experimentInfo": None,
        "prices": [
            {"usageLimit": None, "id": p["id"], "price": price(env, plan_record, p), "subscriptionId": record["id"]}
            for p in plan_prices
        ],
        "totalPrice": {
            "subTotal": money(plan_total + addon_total),
            "total": money(plan_total + addon_total),
            "addonsTotal": money(addon_total),
        },
        "plan": package(env, PLAN, plan_record),
        "addons": addons,
        "scheduledUpdates": [],
        "futureUpdates": [],
        "trialConfiguration": None,
        "payingCustomer": None,
        "customer": lambda _info, **_: customer(env, customer_record),
        "environmentId": env.environment_id,
        "subscriptionEntitlements": [
            _subscription_entitlement(env, record, e, "SubscriptionEntitlement") for e in entitlements
        ],
        "entitlements": [
            _subscription_entitlement(env, record, e, "SubscriptionFeatureEntitlement") for e in entitlements
        ],
        "createdAt": datetimes.render(record["createdAt"]),
    }


def measurement(env: Environment, record: Shape) -> Shape:
    return {
        "__typename": "UsageMeasurementWithCurrentUsage",
        **{k: record.get(k) for k in ("id", "customerId", "resourceId", "featureId", "value", "currentUsage")},
        "environmentId": env.environment_id,
        "credit": None,
        "usagePeriodStart": datetimes.render(record.get("usagePeriodStart")),
        "usagePeriodEnd": datetimes.render(record.get("usagePeriodEnd")),
        "nextResetDate": datetimes.render(record.get("nextResetDate")),
        "timestamp": datetimes.render(record["timestamp"]),
        "createdAt": datetimes.render(record["createdAt"]),
    }


def usage_history(data: Shape) -> Shape:
    return {
        "__typename": "UsageHistory",
        "startDate": datetimes.render(data["startDate"]),
        "endDate": datetimes.render(data.get("endDate")),
        "markers": data["markers"],
        "groups": data["groups"],
        "usageMeasurements": [{**p, "date": datetimes.render(p["date"])} for p in data["usageMeasurements"]],
    }


def usage_history_v2(data: Shape) -> Shape:
    points = [
        {"timestamp": datetimes.render(p["date"]), "value": p["value"], "isResetPoint": p["isResetPoint"]}
        for p in data["usageMeasurements"]
    ]
    return {"__typename": "UsageHistoryV2", "markers": data["markers"], "series": [{"tags": [], "points": points}]}


def subscription_query(env: Environment, record: Shape) -> Shape:
    """A `SubscriptionQuery` (the `subscriptions` list's node): a subscription plus the ids it carries itself.

    Its `customerId` is the customer's internal id, as Stigg's docs describe the `subscriptions` filter of that name;
    the customer's own id is `customer { customerId }`.
    """
    customer_record = env.get(CUSTOMER, record["customerId"])
    assert customer_record is not None
    return {
        **subscription(env, record),
        "__typename": "SubscriptionQuery",
        "customerId": customer_record["id"],
        "resourceId": record.get("resourceId"),
        "syncStates": [],
    }


def import_task_errors(record: Shape) -> list[Shape]:
    """The rows an import task refused (a row skipped by the `updatedAt` rule is not an error)."""
    return [
        {"id": str(row.get("subscriptionId") or row.get("customerId") or row["index"]), "error": row_error(row)}
        for row in record.get("skipped", [])
        if row.get("code") != "Skipped"
    ]


def row_error(row: Shape) -> str:
    return f"{row['code']}: {row['reason']}"


def import_task_status(record: Shape) -> str:
    """PENDING until applied; then COMPLETED, PARTIALLY_FAILED (some rows refused) or FAILED (every row refused).

    Stigg documents no mapping from refused rows to `TaskStatus`; this is the emulator's reading of the enum."""
    if record["status"] == "PENDING":
        return "PENDING"
    errors = len(import_task_errors(record))
    if errors and errors == record.get("rowCount", errors):
        return "FAILED"
    return "PARTIALLY_FAILED" if errors else "COMPLETED"


def import_task(env: Environment, record: Shape) -> Shape:
    """An `ImportIntegrationTask` of type IMPORT_SUBSCRIPTIONS_BULK: what `importSubscriptionsBulk` started."""
    done = record["status"] != "PENDING"
    return {
        "__typename": "ImportIntegrationTask",
        "id": record["taskId"],
        "taskType": "IMPORT_SUBSCRIPTIONS_BULK",
        "status": import_task_status(record),
        "progress": 100 if done else 0,
        "totalSubtasksCount": record.get("rowCount", 0),
        "customersCount": record.get("customersCount", 0),
        "productsCount": 0,
        "importErrors": import_task_errors(record),
        "environmentId": env.environment_id,
        "createdAt": datetimes.render(record.get("createdAt")),
        "startDate": datetimes.render(record.get("completedAt")),
        "endDate": datetimes.render(record.get("completedAt")),
    }
