"""The root fields the emulator implements; every other field of Stigg's schema validates but answers an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import customers, list_queries, product_catalogue, subscriptions, usage, wire_shapes
from .environment import Environment
from .errors import StiggError
from .product_catalogue import ADDON, FEATURE, PLAN, PRODUCT

Resolver = Callable[..., Any]
Info = Any  # graphql-core's Info; resolvers here never read it


def _connection(shapes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "edges": [{"cursor": str(i), "node": s} for i, s in enumerate(shapes)],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
        "totalCount": len(shapes),
    }


def _ref_id_filter(records: list[dict[str, Any]], filter_: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The catalogue queries' filters, as far as the seed uses them: `refId: {eq | in}`."""
    ref = (filter_ or {}).get("refId") or {}
    if "eq" in ref:
        return [r for r in records if r["refId"] == ref["eq"]]
    if "in" in ref:
        return [r for r in records if r["refId"] in ref["in"]]
    return records


def query_fields(env: Environment) -> dict[str, Resolver]:
    def get_customer_by_ref_id(_info: Info, input: dict[str, Any]) -> Any:
        found = env.get(customers.CUSTOMER, input["customerId"])
        return None if found is None else wire_shapes.customer(env, found)

    def get_active_subscriptions(_info: Info, input: dict[str, Any]) -> Any:
        customers.existing(env, input["customerId"])
        resource_ids = input.get("resourceIds")
        if input.get("resourceId"):
            resource_ids = [*(resource_ids or []), input["resourceId"]]
        found = subscriptions.active(env, input["customerId"], resource_ids)
        return [wire_shapes.subscription(env, s) for s in found]

    def get_subscription(_info: Info, input: dict[str, Any]) -> Any:
        return wire_shapes.subscription(env, subscriptions.existing(env, input["subscriptionId"]))

    def usage_history(_info: Info, usageHistoryInput: dict[str, Any]) -> Any:  # noqa: N803
        return wire_shapes.usage_history(usage.history(env, usageHistoryInput))

    def usage_history_v2(_info: Info, input: dict[str, Any]) -> Any:
        v1_input = {
            "customerRefId": input["customerId"],
            "featureRefId": input["featureId"],
            "resourceRefId": input.get("resourceId"),
            "startDate": input["startDate"],
            "endDate": input.get("endDate"),
        }
        return wire_shapes.usage_history_v2(usage.history(env, v1_input))

    def products(_info: Info, filter: dict[str, Any] | None = None, **_: Any) -> Any:
        found = _ref_id_filter(env.store.all(PRODUCT), filter)
        return _connection([wire_shapes.product(env, p) for p in found])

    def features(_info: Info, filter: dict[str, Any] | None = None, **_: Any) -> Any:
        found = _ref_id_filter(env.store.all(FEATURE), filter)
        return _connection([wire_shapes.feature(env, f) for f in found])

    def package_by_ref_id(kind: str) -> Resolver:
        def resolve(_info: Info, input: dict[str, Any]) -> Any:
            found = env.get(kind, input["refId"])
            return None if found is None else wire_shapes.package(env, kind, found)

        return resolve

    return {
        "getCustomerByRefId": get_customer_by_ref_id,
        "getActiveSubscriptions": get_active_subscriptions,
        "getSubscription": get_subscription,
        "usageHistory": usage_history,
        "usageHistoryV2": usage_history_v2,
        "products": products,
        "features": features,
        "getPlanByRefId": package_by_ref_id(PLAN),
        "getAddonByRefId": package_by_ref_id(ADDON),
        "currentEnvironment": lambda _info: env.environment_id,
        "customers": lambda _info, **args: list_queries.customers(env, **args),
        "subscriptions": lambda _info, **args: list_queries.subscriptions_list(env, **args),
        "importIntegrationTasks": lambda _info, **args: list_queries.import_integration_tasks(env, **args),
    }


def mutation_fields(env: Environment) -> dict[str, Resolver]:
    def provision(_info: Info, input: dict[str, Any]) -> Any:
        result = subscriptions.provision(env, input)
        record = result["subscription"]
        return {
            "__typename": "ProvisionSubscriptionResult",
            "id": result["id"],
            "status": result["status"],
            "subscription": None if record is None else wire_shapes.subscription(env, record),
            "checkoutUrl": None,
            "checkoutBillingId": None,
            "isScheduled": False,
            "entitlements": [],
            "entitlementsV2": [],
        }

    def report_usage_bulk(_info: Info, input: dict[str, Any]) -> Any:
        return [wire_shapes.measurement(env, m) for m in usage.report_bulk(env, input)]

    def create_product(_info: Info, input: dict[str, Any]) -> Any:
        return wire_shapes.product(env, product_catalogue.create_product(env, input["product"]))

    def create_feature(_info: Info, input: dict[str, Any]) -> Any:
        return wire_shapes.feature(env, product_catalogue.create_feature(env, input))

    def create_package(kind: str) -> Resolver:
        def resolve(_info: Info, input: dict[str, Any]) -> Any:
            return wire_shapes.package(env, kind, product_catalogue.create_package(env, kind, input))

        return resolve

    def publish(kind: str) -> Resolver:
        def resolve(_info: Info, input: dict[str, Any]) -> Any:
            return product_catalogue.publish(env, kind, input["id"])

        return resolve

    def create_package_entitlements(_info: Info, input: dict[str, Any]) -> Any:
        added = product_catalogue.add_entitlements(env, input["packageId"], input["entitlements"])
        return [
            wire_shapes.package_entitlement(env, a["package"], a["entitlement"], "PackageFeatureEntitlement")
            for a in added
        ]

    def set_package_pricing(_info: Info, input: dict[str, Any]) -> Any:
        return product_catalogue.set_pricing(env, input)

    return {
        "importCustomersBulk": lambda _info, input: customers.import_bulk(env, input),
        "importSubscriptionsBulk": lambda _info, input: subscriptions.import_bulk(env, input),
        "reportUsageBulk": report_usage_bulk,
        "provisionSubscriptionV2": provision,
        "provisionSubscription": provision,
        "cancelSubscription": lambda _info, input: wire_shapes.subscription(env, subscriptions.cancel(env, input)),
        "createOneProduct": create_product,
        "createFeature": create_feature,
        "createOnePlan": create_package(PLAN),
        "createOneAddon": create_package(ADDON),
        "createPackageEntitlements": create_package_entitlements,
        "setPackagePricing": set_package_pricing,
        "publishPlan": publish(PLAN),
        "publishAddon": publish(ADDON),
    }


class RootFields(dict[str, Any]):
    """A root value: implemented fields resolve; any other field of the schema answers `UnsupportedParameter`."""

    def __missing__(self, name: str) -> Resolver:
        def unsupported(_info: Info, **_: Any) -> Any:
            raise StiggError("UnsupportedParameter", f"{name} is not implemented by the Stigg emulator")

        return unsupported

    def get(self, name: str, default: Any = None) -> Any:  # graphql-core's default resolver calls .get
        return self[name]
