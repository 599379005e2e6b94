"""GraphQL operations the SDK's `Operations` class lacks (catalogue writes, a few reads), built with sgqlc against
the SDK's own generated schema so `client.request(...)` sends and parses them like its built-in operations."""

from __future__ import annotations

from typing import Any

import sgqlc.types
from sgqlc.operation import Operation
from stigg.generated import schema as sdk


def _operation(root: Any, name: str, input_type: Any, field: str, arg: str = "input") -> tuple[Operation, Any]:
    op = Operation(root, name=name, variables={arg: sgqlc.types.Arg(sgqlc.types.non_null(input_type))})
    return op, getattr(op, field)(**{arg: sgqlc.types.Variable(arg)})


def current_environment() -> Operation:
    op = Operation(sdk.schema.query_type, name="CurrentEnvironment")
    op.current_environment()
    return op


def products_by_ref_id() -> Operation:
    op = Operation(
        sdk.schema.query_type, name="ProductsByRefId", variables={"filter": sgqlc.types.Arg(sdk.ProductFilter)}
    )
    op.products(filter=sgqlc.types.Variable("filter")).edges().node().__fields__(
        "id", "ref_id", "multiple_subscriptions"
    )
    return op


def features_by_ref_id() -> Operation:
    op = Operation(
        sdk.schema.query_type, name="FeaturesByRefId", variables={"filter": sgqlc.types.Arg(sdk.FeatureFilter)}
    )
    op.features(filter=sgqlc.types.Variable("filter")).edges().node().__fields__("id", "ref_id")
    return op


def _package_by_ref_id(field: str, name: str) -> Operation:
    op, selection = _operation(sdk.schema.query_type, name, sdk.GetPackageByRefIdInput, field)
    selection.__fields__("id", "ref_id", "status", "pricing_type")
    return op


def plan_by_ref_id() -> Operation:
    return _package_by_ref_id("get_plan_by_ref_id", "PlanByRefId")


def addon_by_ref_id() -> Operation:
    return _package_by_ref_id("get_addon_by_ref_id", "AddonByRefId")


def create_product() -> Operation:
    op, selection = _operation(
        sdk.schema.mutation_type, "CreateProduct", sdk.CreateOneProductInput, "create_one_product"
    )
    selection.__fields__("id", "ref_id", "multiple_subscriptions")
    return op


def create_feature() -> Operation:
    op, selection = _operation(sdk.schema.mutation_type, "CreateFeature", sdk.FeatureInput, "create_feature")
    selection.__fields__("id", "ref_id", "feature_type", "meter_type")
    return op


def create_plan() -> Operation:
    op, selection = _operation(sdk.schema.mutation_type, "CreatePlan", sdk.PlanCreateInput, "create_one_plan")
    selection.__fields__("id", "ref_id", "status")
    return op


def create_addon() -> Operation:
    op, selection = _operation(sdk.schema.mutation_type, "CreateAddon", sdk.AddonCreateInput, "create_one_addon")
    selection.__fields__("id", "ref_id", "status")
    return op


def create_package_entitlements() -> Operation:
    op, selection = _operation(
        sdk.schema.mutation_type,
        "CreatePackageEntitlements",
        sdk.CreatePackageEntitlementsInput,
        "create_package_entitlements",
    )
    selection.__as__(sdk.PackageFeatureEntitlement).__fields__("id", "feature_id")
    return op


def set_package_pricing() -> Operation:
    op, selection = _operation(
        sdk.schema.mutation_type, "SetPackagePricing", sdk.PackagePricingInput, "set_package_pricing"
    )
    selection.__fields__("package_id", "pricing_type")
    return op


def publish_plan() -> Operation:
    op, selection = _operation(sdk.schema.mutation_type, "PublishPlan", sdk.PackagePublishInput, "publish_plan")
    selection.__fields__("task_id")
    return op


def publish_addon() -> Operation:
    op, selection = _operation(sdk.schema.mutation_type, "PublishAddon", sdk.PackagePublishInput, "publish_addon")
    selection.__fields__("task_id")
    return op
