"""The catalogue: billable metrics, products (USAGE with metric and pricing-group key, FIXED) and rate cards."""

from __future__ import annotations

import json
from typing import Any

from .api_call import ApiCall
from .errors import ApiError, not_found
from .pagination import page
from .wire_format import USD_CENTS, format_time, new_id, parse_time, public, upper

CREATED_BY = "billmig-local"


# ---------------------------------------------------------------------------------------------- billable metrics
def create_billable_metric(call: ApiCall) -> Any:
    body = call.body
    if body.get("sql"):
        raise ApiError(400, "sql: SQL billable metrics are not supported by the local emulator")
    aggregation = upper(body.get("aggregation_type") or "COUNT")
    if aggregation != "COUNT" and not body.get("aggregation_key"):
        raise ApiError(400, f"aggregation_key: required for aggregation_type {aggregation}")
    filter_names = [f.get("name") for f in body.get("property_filters") or []]
    if body.get("aggregation_key") and body["aggregation_key"] not in filter_names:
        raise ApiError(400, "aggregation_key: must be one of the property_filters names")
    metric: dict[str, Any] = {
        "id": new_id(call.store, "billable_metric"),
        "name": body["name"],
        "aggregation_type": aggregation,
        "event_type_filter": body.get("event_type_filter") or {},
        "property_filters": body.get("property_filters") or [],
        "group_keys": body.get("group_keys") or [],
        "custom_fields": body.get("custom_fields") or {},
    }
    if body.get("aggregation_key"):
        metric["aggregation_key"] = body["aggregation_key"]
    call.store.put("billable_metric", metric["id"], metric)
    return {"data": {"id": metric["id"]}}


def retrieve_billable_metric(call: ApiCall) -> Any:
    metric = call.store.get("billable_metric", call.path["billable_metric_id"])
    if metric is None:
        raise not_found("billable metric", call.path["billable_metric_id"])
    return {"data": public(metric)}


def list_billable_metrics(call: ApiCall) -> Any:
    metrics = call.store.all("billable_metric")
    chunk, next_page = page(metrics, call.query.get("limit"), call.query.get("next_page"))
    return {"data": public(chunk), "next_page": next_page}


# ---------------------------------------------------------------------------------------------- products
_PRODUCT_FIELDS = (
    "billable_metric_id",
    "pricing_group_key",
    "presentation_group_key",
    "tags",
    "is_refundable",
    "netsuite_internal_item_id",
    "netsuite_overage_item_id",
    "quantity_conversion",
    "quantity_rounding",
    "exclude_free_usage",
    "composite_product_ids",
    "composite_tags",
)


def create_product(call: ApiCall) -> Any:
    body = call.body
    product_type = upper(body["type"])
    if product_type == "PROFESSIONAL_SERVICE":
        product_type = "PRO_SERVICE"
    if product_type == "USAGE":
        if not body.get("billable_metric_id"):
            raise ApiError(400, "billable_metric_id: required for a USAGE product")
        metric = call.store.get("billable_metric", body["billable_metric_id"])
        if metric is None:
            raise ApiError(400, f"billable_metric_id: no billable metric {body['billable_metric_id']}")
        allowed = {key for group in metric.get("group_keys", []) for key in group}
        missing = [k for k in body.get("pricing_group_key") or [] if k not in allowed]
        if missing:
            raise ApiError(400, f"pricing_group_key: {missing} not among the billable metric's group_keys")
    elif body.get("billable_metric_id") or body.get("pricing_group_key"):
        raise ApiError(400, "billable_metric_id: only USAGE products take a billable metric or pricing_group_key")
    now = format_time(call.now())
    version: dict[str, Any] = {"name": body["name"], "created_at": now, "created_by": CREATED_BY, "starting_at": now}
    for key in _PRODUCT_FIELDS:
        if body.get(key) is not None:
            version[key] = body[key]
    if body.get("composite_scope"):
        version["composite_scope"] = upper(body["composite_scope"])
    product = {
        "id": new_id(call.store, "product"),
        "type": product_type,
        "initial": version,
        "current": dict(version),
        "updates": [],
        "custom_fields": body.get("custom_fields") or {},
        "archived_at": None,
    }
    call.store.put("product", product["id"], product)
    return {"data": {"id": product["id"]}}


def get_product(call: ApiCall, product_id: str) -> dict[str, Any]:
    product = call.store.get("product", product_id)
    if product is None:
        raise not_found("product", product_id)
    return product


def retrieve_product(call: ApiCall) -> Any:
    return {"data": _render_product(get_product(call, call.body["id"]))}


def _render_product(product: dict[str, Any]) -> dict[str, Any]:
    return dict(public(product))


def list_products(call: ApiCall) -> Any:
    wanted = (call.field("archive_filter") or "NOT_ARCHIVED").upper()
    products = [
        p for p in call.store.all("product") if wanted == "ALL" or (wanted == "ARCHIVED") == bool(p.get("archived_at"))
    ]
    chunk, next_page = page(products, call.query.get("limit"), call.query.get("next_page"))
    return {"data": [_render_product(p) for p in chunk], "next_page": next_page}


# ---------------------------------------------------------------------------------------------- rate cards
def create_rate_card(call: ApiCall) -> Any:
    body = call.body
    aliases = body.get("aliases") or []
    for alias in aliases:
        for card in call.store.all("rate_card"):
            if any(a["name"] == alias["name"] for a in card.get("aliases", [])):
                raise ApiError(409, f"rate card alias {alias['name']!r} is already in use")
    card = {
        "id": new_id(call.store, "rate_card"),
        "name": body["name"],
        "created_at": format_time(call.now()),
        "created_by": CREATED_BY,
        "fiat_credit_type": dict(USD_CENTS),
        "credit_type_conversions": [],
        "aliases": aliases,
        "custom_fields": body.get("custom_fields") or {},
    }
    if body.get("description"):
        card["description"] = body["description"]
    call.store.put("rate_card", card["id"], card)
    return {"data": {"id": card["id"]}}


def get_rate_card(call: ApiCall, rate_card_id: str) -> dict[str, Any]:
    card = call.store.get("rate_card", rate_card_id)
    if card is None:
        raise not_found("rate card", rate_card_id)
    return card


def rate_card_by_alias(call: ApiCall, alias: str) -> dict[str, Any]:
    now = call.now()
    for card in call.store.all("rate_card"):
        for entry in card.get("aliases", []):
            if entry["name"] != alias:
                continue
            if entry.get("starting_at") and parse_time(entry["starting_at"]) > now:
                continue
            if entry.get("ending_before") and parse_time(entry["ending_before"]) <= now:
                continue
            return card
    raise ApiError(400, f"rate_card_alias: no rate card with alias {alias!r}")


def retrieve_rate_card(call: ApiCall) -> Any:
    return {"data": public(get_rate_card(call, call.body["id"]))}


def list_rate_cards(call: ApiCall) -> Any:
    chunk, next_page = page(call.store.all("rate_card"), call.query.get("limit"), call.query.get("next_page"))
    return {"data": public(chunk), "next_page": next_page}


def _store_rate(call: ApiCall, rate_card_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    product = get_product(call, spec["product_id"])
    if product["type"] in ("FIXED", "PRO_SERVICE"):
        # docs.metronome.com/pricing-and-packaging/create-rate-cards: rate cards price usage, composite and
        # subscription products; a fixed product's price is set on the contract
        raise ApiError(400, f"product_id: a {product['type']} product cannot have a rate on a rate card")
    rate_type = upper(spec["rate_type"])
    if rate_type == "FLAT" and spec.get("price") is None:
        raise ApiError(400, "price: required for a FLAT rate")
    if rate_type == "TIERED":
        tiers = spec.get("tiers") or []
        if not tiers:
            raise ApiError(400, "tiers: required for a TIERED rate")
        if any(t.get("size") is None for t in tiers[:-1]):
            raise ApiError(400, "tiers: every tier but the last needs a size")
    keys = product["current"].get("pricing_group_key") or []
    values = spec.get("pricing_group_values") or None
    if values and sorted(values) != sorted(keys):
        raise ApiError(400, f"pricing_group_values: keys must be the product's pricing_group_key {keys}")
    rate: dict[str, Any] = {"rate_type": rate_type, "credit_type": dict(USD_CENTS)}
    for key in ("price", "tiers", "quantity", "is_prorated", "custom_rate"):
        if spec.get(key) is not None:
            rate[key] = spec[key]
    if values:
        rate["pricing_group_values"] = values
    stored: dict[str, Any] = {
        "product_id": product["id"],
        "product_name": product["current"]["name"],
        "product_tags": product["current"].get("tags", []),
        "product_custom_fields": product.get("custom_fields") or {},
        "starting_at": format_time(parse_time(spec["starting_at"], "starting_at")),
        "entitled": bool(spec.get("entitled", True)),
        "rate": rate,
        "_rate_card_id": rate_card_id,
        "_starting_ts": parse_time(spec["starting_at"], "starting_at"),
        "_ending_ts": None,
    }
    if values:
        stored["pricing_group_values"] = values
    if spec.get("ending_before"):
        stored["ending_before"] = format_time(parse_time(spec["ending_before"], "ending_before"))
        stored["_ending_ts"] = parse_time(spec["ending_before"])
    if spec.get("billing_frequency"):
        stored["billing_frequency"] = upper(spec["billing_frequency"])
    if spec.get("commit_rate"):
        stored["commit_rate"] = spec["commit_rate"]
    call.store.put("rate", new_id(call.store, "rate"), stored)
    return stored


def add_rate(call: ApiCall) -> Any:
    with call.store.lock:
        get_rate_card(call, call.body["rate_card_id"])
        stored = _store_rate(call, call.body["rate_card_id"], call.body)
    return {"data": {**stored["rate"], **({"commit_rate": stored["commit_rate"]} if "commit_rate" in stored else {})}}


def add_rates(call: ApiCall) -> Any:
    with call.store.lock:
        card = get_rate_card(call, call.body["rate_card_id"])
        for spec in call.body["rates"]:
            _store_rate(call, card["id"], spec)
    return {"data": {"id": card["id"]}}


def rates_of(call: ApiCall, rate_card_id: str) -> list[dict[str, Any]]:
    return call.store.where("rate", "_rate_card_id", rate_card_id)


def get_rates(call: ApiCall) -> Any:
    body = call.body
    card = get_rate_card(call, body["rate_card_id"])
    at = parse_time(body["at"], "at")
    in_effect: dict[str, dict[str, Any]] = {}
    for rate in rates_of(call, card["id"]):
        if rate["_starting_ts"] > at or (rate["_ending_ts"] is not None and rate["_ending_ts"] <= at):
            continue
        # a later rate for the same product and pricing-group values supersedes the earlier one (as rating does)
        key = json.dumps([rate["product_id"], rate.get("pricing_group_values"), rate.get("billing_frequency")])
        if key not in in_effect or rate["_starting_ts"] >= in_effect[key]["_starting_ts"]:
            in_effect[key] = rate
    found = list(in_effect.values())
    selectors = body.get("selectors") or []
    if selectors:
        found = [r for r in found if any(_selected(r, s) for s in selectors)]
    chunk, next_page = page(found, call.query.get("limit"), call.query.get("next_page"))
    return {"data": public(chunk), "next_page": next_page}


def _selected(rate: dict[str, Any], selector: dict[str, Any]) -> bool:
    if selector.get("product_id") and rate["product_id"] != selector["product_id"]:
        return False
    if selector.get("product_tags") and not set(selector["product_tags"]) & set(rate["product_tags"]):
        return False
    values = rate.get("pricing_group_values") or {}
    if selector.get("pricing_group_values") is not None and values != selector["pricing_group_values"]:
        return False
    partial = selector.get("partial_pricing_group_values") or {}
    if any(values.get(k) != v for k, v in partial.items()):
        return False
    return not (
        selector.get("billing_frequency")
        and rate.get("billing_frequency")
        and rate["billing_frequency"] != upper(selector["billing_frequency"])
    )
