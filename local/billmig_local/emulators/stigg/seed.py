"""`billmig local seed stigg`: Stigg's catalogue from the shared local catalogue, written through the SDK.

Translates `billmig_local.catalogue.STANDARD`: its `stigg` section (product, free / custom plans, boolean,
configurable and events-metered features, add-ons), each metered offering's `stigg_feature_id` as a metered feature
whose usage is reported (calculated usage; `sum`/`count` -> Incremental, `last` -> Fluctuating), and each
`LicensedPlan.stigg_plan_id` as a paid plan with a monthly flat fee. Plans and add-ons are created as drafts, given
entitlements and pricing, then published, as in Stigg. Re-running it changes nothing: every object is looked up
first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from stigg import Stigg, StiggClient

from billmig_local.catalogue import STANDARD, Catalogue

from . import catalogue_operations as ops
from .app import GRAPHQL_PATH

EVENTS_METER = {"aggregation": {"function": "COUNT"}, "filters": []}
_METER_TYPE = {"sum": "Incremental", "count": "Incremental", "last": "Fluctuating"}


def _features(catalogue: Catalogue) -> list[dict[str, Any]]:
    stigg = catalogue.stigg
    features: list[dict[str, Any]] = []
    for ref_id in stigg.boolean_feature_ids:
        features.append({"refId": ref_id, "featureType": "BOOLEAN", "meterType": "None"})
    for ref_id in stigg.configurable_feature_ids:
        features.append({"refId": ref_id, "featureType": "NUMBER", "meterType": "None", "featureUnits": "unit"})
    for offering in catalogue.metered:
        features.append(
            {
                "refId": offering.stigg_feature_id,
                "displayName": offering.name,
                "featureType": "NUMBER",
                "meterType": _METER_TYPE[offering.aggregation],
                "featureUnits": offering.stigg_unit,
                "featureUnitsPlural": offering.stigg_unit + "s",
            }
        )
    for ref_id in stigg.events_metered_feature_ids:
        features.append(
            {
                "refId": ref_id,
                "featureType": "NUMBER",
                "meterType": "Incremental",
                "meter": EVENTS_METER,
                "featureUnits": "event",
                "featureUnitsPlural": "events",
            }
        )
    for feature in features:
        feature.setdefault("displayName", feature["refId"].removeprefix("feature-").replace("-", " ").capitalize())
    return features


def _usage_entitlements(catalogue: Catalogue) -> list[dict[str, Any]]:
    """Every plan grants the usage features without a cap, reset monthly (caps belong to custom subscriptions)."""
    return [
        {"feature": {"featureId": o.stigg_feature_id, "hasUnlimitedUsage": True, "resetPeriod": "MONTH"}}
        for o in catalogue.metered
    ]


def _included(catalogue: Catalogue, feature_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    stigg = catalogue.stigg
    result: list[dict[str, Any]] = []
    for feature_id in feature_ids:
        if feature_id in stigg.boolean_feature_ids:
            result.append({"feature": {"featureId": feature_id}})
        else:
            result.append({"feature": {"featureId": feature_id, "hasUnlimitedUsage": True}})
    return result


def _plans(catalogue: Catalogue) -> list[dict[str, Any]]:
    stigg = catalogue.stigg
    plans: list[dict[str, Any]] = [
        {
            "refId": stigg.free_plan_id,
            "displayName": "Free",
            "pricingType": "FREE",
            "entitlements": _usage_entitlements(catalogue),
        },
    ]
    for ref_id in stigg.paid_plan_ids:
        licensed = next((p for p in catalogue.plans if p.stigg_plan_id == ref_id), None)
        if licensed is None:
            raise ValueError(f"paid Stigg plan {ref_id!r} has no LicensedPlan (its price) in the catalogue")
        plans.append(
            {
                "refId": ref_id,
                "displayName": licensed.name,
                "pricingType": "PAID",
                "monthlyCents": licensed.monthly_amount,
                "entitlements": _included(catalogue, licensed.included_features) + _usage_entitlements(catalogue),
            }
        )
    plans.append(
        {"refId": stigg.custom_plan_id, "displayName": "Enterprise", "pricingType": "CUSTOM", "entitlements": []}
    )
    return plans


def _found(client: StiggClient, operation: Any, variables: dict[str, Any], field: str) -> bool:
    """Whether a lookup answered an object (sgqlc renders a null object as an empty one, so read the raw reply)."""
    reply = client.request(operation, variables, raw_response=True)
    if reply.get("errors"):
        raise RuntimeError(f"{field}: {reply['errors']}")
    return reply["data"][field] is not None


def seed_catalogue(client: StiggClient, catalogue: Catalogue = STANDARD) -> dict[str, list[str]]:
    """Create what is missing; returns the refIds created, by kind."""
    created: dict[str, list[str]] = {"products": [], "features": [], "plans": [], "addons": []}
    environment_id = client.request(ops.current_environment(), {}).current_environment
    product_ref = catalogue.stigg.product_id
    found = client.request(ops.products_by_ref_id(), {"filter": {"refId": {"eq": product_ref}}}).products.edges
    if found:
        product_id = found[0].node.id
    else:
        product = {
            "refId": product_ref,
            "displayName": "Platform",
            "environmentId": environment_id,
            "multipleSubscriptions": False,
        }
        product_id = client.request(ops.create_product(), {"input": {"product": product}}).create_one_product.id
        created["products"].append(product_ref)

    for feature in _features(catalogue):
        exists = client.request(ops.features_by_ref_id(), {"filter": {"refId": {"eq": feature["refId"]}}})
        if not exists.features.edges:
            client.request(ops.create_feature(), {"input": {**feature, "environmentId": environment_id}})
            created["features"].append(feature["refId"])

    for plan in _plans(catalogue):
        lookup = {"input": {"refId": plan["refId"], "environmentId": environment_id}}
        if _found(client, ops.plan_by_ref_id(), lookup, "getPlanByRefId"):
            continue
        new = {
            "refId": plan["refId"],
            "displayName": plan["displayName"],
            "productId": product_id,
            "pricingType": plan["pricingType"],
            "environmentId": environment_id,
        }
        plan_id = client.request(ops.create_plan(), {"input": new}).create_one_plan.id
        _finish_package(client, plan_id, environment_id, plan)
        client.request(ops.publish_plan(), {"input": {"id": plan_id, "migrationType": "NEW_CUSTOMERS"}})
        created["plans"].append(plan["refId"])

    for addon_ref in catalogue.stigg.addon_ids:
        lookup = {"input": {"refId": addon_ref, "environmentId": environment_id}}
        if _found(client, ops.addon_by_ref_id(), lookup, "getAddonByRefId"):
            continue
        display = addon_ref.removeprefix("addon-").replace("-", " ").capitalize()
        new = {
            "refId": addon_ref,
            "displayName": display,
            "productId": product_id,
            "pricingType": "FREE",
            "environmentId": environment_id,
        }
        addon_id = client.request(ops.create_addon(), {"input": new}).create_one_addon.id
        _finish_package(client, addon_id, environment_id, {"pricingType": "FREE", "entitlements": []})
        client.request(ops.publish_addon(), {"input": {"id": addon_id, "migrationType": "NEW_CUSTOMERS"}})
        created["addons"].append(addon_ref)
    return created


def _finish_package(client: StiggClient, package_id: str, environment_id: str, spec: dict[str, Any]) -> None:
    if spec["entitlements"]:
        client.request(
            ops.create_package_entitlements(),
            {"input": {"packageId": package_id, "environmentId": environment_id, "entitlements": spec["entitlements"]}},
        )
    pricing: dict[str, Any] = {
        "packageId": package_id,
        "environmentId": environment_id,
        "pricingType": spec["pricingType"],
    }
    if spec.get("monthlyCents"):
        pricing["pricingModels"] = [
            {
                "billingModel": "FLAT_FEE",
                "pricePeriods": [
                    {"billingPeriod": "MONTHLY", "price": {"amount": spec["monthlyCents"] / 100, "currency": "USD"}}
                ],
            }
        ]
    client.request(ops.set_package_pricing(), {"input": pricing})


def seed(
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where `billmig local up` keeps its state.")] = Path(
        ".local"
    ),
    api_key: Annotated[str, typer.Option("--api-key", envvar="STIGG_API_KEY", help="Sent as X-API-KEY.")] = "local",
    url: Annotated[str | None, typer.Option("--url", help="The emulator's base URL (default: endpoints.json).")] = None,
) -> None:
    """Create Stigg's product, features, plans and add-ons from the shared local catalogue (idempotent)."""
    if url is None:
        endpoints_file = state_dir / "endpoints.json"
        if not endpoints_file.exists():
            typer.echo(f"{endpoints_file} not found: start the local stack with `billmig local up` first", err=True)
            raise typer.Exit(1)
        url = json.loads(endpoints_file.read_text()).get("stigg")
        if not url:
            typer.echo("no Stigg emulator in endpoints.json", err=True)
            raise typer.Exit(1)
    client = Stigg.create_client(api_key, api_url=url.rstrip("/") + GRAPHQL_PATH, enable_edge=False)
    created = seed_catalogue(client)
    for kind, refs in created.items():
        typer.echo(f"{kind}: {len(refs)} created" + (f" ({', '.join(refs)})" if refs else ""))
