"""Products, features, plans and add-ons: the catalogue customers subscribe to, built with Stigg's own mutations.

Plans and add-ons ("packages") are created as drafts, get entitlements and pricing while drafts, and become usable
once published, as in Stigg. Prices are kept in integer cents; Stigg's `MoneyInputDTO.amount` is in currency units.
"""

from __future__ import annotations

from typing import Any

from .environment import Environment
from .errors import (
    ADDON_NOT_FOUND,
    BAD_USER_INPUT,
    DUPLICATED_ENTITY,
    FEATURE_NOT_FOUND,
    PACKAGE_ALREADY_PUBLISHED,
    PLAN_NOT_FOUND,
    PRODUCT_NOT_FOUND,
    UNPUBLISHED_PACKAGE,
    StiggError,
)

PRODUCT, FEATURE, PLAN, ADDON = "product", "feature", "plan", "addon"
PACKAGE_KINDS = (PLAN, ADDON)


def _by_uuid(env: Environment, kind: str, oid: str) -> dict[str, Any] | None:
    for record in env.store.all(kind):
        if record["id"] == oid:
            return record
    return None


def create_product(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    ref_id = data["refId"]
    if env.get(PRODUCT, ref_id) is not None:
        raise StiggError(DUPLICATED_ENTITY, f"product {ref_id!r} already exists")
    now = env.now()
    return env.store.put(
        PRODUCT,
        ref_id,
        {
            "id": env.new_id(),
            "refId": ref_id,
            "displayName": data.get("displayName") or ref_id,
            "description": data.get("description"),
            "multipleSubscriptions": bool(data.get("multipleSubscriptions")),
            "additionalMetaData": data.get("additionalMetaData"),
            "createdAt": now,
            "updatedAt": now,
        },
    )


def create_feature(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    ref_id = data["refId"]
    if env.get(FEATURE, ref_id) is not None:
        raise StiggError(DUPLICATED_ENTITY, f"feature {ref_id!r} already exists")
    feature_type = data["featureType"]
    meter_type = data.get("meterType") or "None"
    if feature_type != "NUMBER" and meter_type != "None":
        raise StiggError(BAD_USER_INPUT, f"feature {ref_id!r}: only NUMBER features can be metered")
    if data.get("meter") is not None and meter_type == "None":
        raise StiggError(BAD_USER_INPUT, f"feature {ref_id!r}: a meter needs meterType Incremental or Fluctuating")
    now = env.now()
    return env.store.put(
        FEATURE,
        ref_id,
        {
            "id": env.new_id(),
            "refId": ref_id,
            "displayName": data["displayName"],
            "description": data.get("description"),
            "featureType": feature_type,
            "meterType": meter_type,
            "meter": data.get("meter"),  # present = an events meter (raw events, aggregated by Stigg)
            "featureUnits": data.get("featureUnits"),
            "featureUnitsPlural": data.get("featureUnitsPlural"),
            "additionalMetaData": data.get("additionalMetaData"),
            "createdAt": now,
            "updatedAt": now,
        },
    )


def feature(env: Environment, ref_id: str) -> dict[str, Any]:
    found = env.get(FEATURE, ref_id)
    if found is None:
        raise StiggError(FEATURE_NOT_FOUND, f"feature {ref_id!r} not found")
    return found


def is_calculated_metered(record: dict[str, Any]) -> bool:
    """Usage can be reported only for metered features whose usage the customer calculates (no events meter)."""
    return record["meterType"] != "None" and record.get("meter") is None


def create_package(env: Environment, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    ref_id = data.get("refId")
    if not ref_id:
        raise StiggError(BAD_USER_INPUT, f"{kind} refId is required")
    if env.get(kind, ref_id) is not None:
        raise StiggError(DUPLICATED_ENTITY, f"{kind} {ref_id!r} already exists")
    product = _by_uuid(env, PRODUCT, data["productId"])
    if product is None:
        raise StiggError(PRODUCT_NOT_FOUND, f"product {data['productId']} not found")
    now = env.now()
    return env.store.put(
        kind,
        ref_id,
        {
            "id": env.new_id(),
            "type": "Plan" if kind == PLAN else "Addon",
            "refId": ref_id,
            "productRefId": product["refId"],
            "displayName": data["displayName"],
            "description": data.get("description"),
            "billingId": data.get("billingId"),
            "pricingType": data.get("pricingType"),
            "status": "DRAFT",
            "versionNumber": 1,
            "maxQuantity": data.get("maxQuantity"),
            "additionalMetaData": data.get("additionalMetaData"),
            "entitlements": [],
            "prices": [],
            "createdAt": now,
            "updatedAt": now,
        },
    )


def package_by_id(env: Environment, package_id: str) -> tuple[str, dict[str, Any]]:
    """A plan or add-on by its UUID or its refId (Stigg's package inputs take either)."""
    for kind in PACKAGE_KINDS:
        found = _by_uuid(env, kind, package_id) or env.get(kind, package_id)
        if found is not None:
            return kind, found
    raise StiggError(PLAN_NOT_FOUND, f"package {package_id} not found")


def _editable(kind: str, package: dict[str, Any]) -> None:
    if package["status"] != "DRAFT":
        raise StiggError("EditAllowedOnDraftPackageOnlyError", f"{kind} {package['refId']!r} is not a draft")


def add_entitlements(env: Environment, package_id: str, entitlements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kind, package = package_by_id(env, package_id)
    _editable(kind, package)
    for item in entitlements:  # check everything before changing anything
        if item.get("feature") is None:
            raise StiggError(BAD_USER_INPUT, "only feature entitlements are supported by this emulator")
        feature(env, item["feature"]["featureId"])
    added = []
    for item in entitlements:
        spec = item["feature"]
        entry = {
            "featureRefId": spec["featureId"],
            "usageLimit": spec.get("usageLimit"),
            "hasUnlimitedUsage": spec.get("hasUnlimitedUsage"),
            "hasSoftLimit": spec.get("hasSoftLimit"),
            "resetPeriod": spec.get("resetPeriod"),
            "isGranted": spec.get("isGranted", True) is not False,
            "behavior": spec.get("behavior") or "Increment",
            "description": spec.get("description"),
            "id": env.new_id(),
        }
        package["entitlements"] = [e for e in package["entitlements"] if e["featureRefId"] != entry["featureRefId"]]
        package["entitlements"].append(entry)
        added.append(entry)
    package["updatedAt"] = env.now()
    env.store.put(kind, package["refId"], package)
    return [{"package": package, "entitlement": e} for e in added]


def set_pricing(env: Environment, data: dict[str, Any]) -> dict[str, Any]:
    kind, package = package_by_id(env, data["packageId"])
    _editable(kind, package)
    prices = []
    for model in data.get("pricingModels") or []:
        if model.get("featureId"):
            feature(env, model["featureId"])
        for period in model["pricePeriods"]:
            money = period.get("price") or {}
            prices.append(
                {
                    "id": env.new_id(),
                    "billingModel": model["billingModel"],
                    "billingCadence": model.get("billingCadence") or "RECURRING",
                    "billingPeriod": period["billingPeriod"],
                    "featureRefId": model.get("featureId"),
                    "amountCents": round(float(money.get("amount", 0)) * 100),
                    "currency": money.get("currency") or "USD",
                    "billingId": period.get("billingId"),
                }
            )
    package["pricingType"] = data["pricingType"]
    package["prices"] = prices
    package["updatedAt"] = env.now()
    env.store.put(kind, package["refId"], package)
    return {"packageId": package["id"], "pricingType": package["pricingType"]}


def publish(env: Environment, kind: str, package_id: str) -> dict[str, Any]:
    found_kind, package = package_by_id(env, package_id)
    if found_kind != kind:
        raise StiggError(PLAN_NOT_FOUND if kind == PLAN else ADDON_NOT_FOUND, f"{kind} {package_id} not found")
    if package["status"] == "PUBLISHED":
        raise StiggError(PACKAGE_ALREADY_PUBLISHED, f"{kind} {package['refId']!r} is already published")
    if package.get("pricingType") is None:
        raise StiggError("PackagePricingTypeNotSet", f"{kind} {package['refId']!r} has no pricing type")
    package["status"] = "PUBLISHED"
    package["updatedAt"] = env.now()
    env.store.put(kind, package["refId"], package)
    return {"taskId": env.new_id()}


def published(env: Environment, kind: str, ref_id: str) -> dict[str, Any]:
    """A plan or add-on a customer can subscribe to; unknown -> PlanNotFound/AddonNotFound, draft -> UnPublished."""
    found = env.get(kind, ref_id)
    if found is None:
        raise StiggError(PLAN_NOT_FOUND if kind == PLAN else ADDON_NOT_FOUND, f"{kind} {ref_id!r} not found")
    if found["status"] != "PUBLISHED":
        raise StiggError(UNPUBLISHED_PACKAGE, f"{kind} {ref_id!r} is not published")
    return found


def is_paid(plan: dict[str, Any]) -> bool:
    return plan.get("pricingType") == "PAID" and any(p["amountCents"] > 0 for p in plan["prices"])
