"""Products and prices: per-unit or tiered (graduated/volume), `transform_quantity`, licensed or metered recurring
prices (a metered price needs an active `recurring.meter`: legacy usage records are gone), `lookup_key`, `active`.
Prices cannot be deleted, only archived.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .api_call import ApiCall, as_int, metadata_update
from .errors import StripeError
from .listing import created_filter, page
from .object_shapes import shaped
from .rendering import render


def _product(call: ApiCall, fields: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    now = int(state.world_now())
    product = shaped(
        "product",
        id=fields.get("id") or state.new_id("prod"),
        active=fields.get("active", True) is not False,
        created=now,
        updated=now,
        name=fields["name"],
        description=fields.get("description"),
        metadata=metadata_update({}, fields.get("metadata")),
        unit_label=fields.get("unit_label"),
        images=[],
        marketing_features=[],
        default_price=None,
        type="service",
        package_dimensions=None,
        shippable=None,
        statement_descriptor=None,
        tax_code=None,
        url=None,
    )
    if state.store.get("product", product["id"]) is not None:
        raise StripeError(400, f"Product already exists: {product['id']}", code="resource_already_exists", param="id")
    return state.put(product)


def create_product(call: ApiCall) -> dict[str, Any]:
    if not call.get("name"):
        raise StripeError(400, "Missing required param: name.", code="parameter_missing", param="name")
    return _product(call, call.params)


def retrieve_product(call: ApiCall) -> dict[str, Any]:
    return call.state.get("product", call.path["id"])


def update_product(call: ApiCall) -> dict[str, Any]:
    product = dict(call.state.get("product", call.path["id"]))
    for key in ("name", "description", "unit_label"):
        if key in call.params:
            product[key] = call.params[key] or None
    if "active" in call.params:
        product["active"] = bool(call.params["active"])
    product["metadata"] = metadata_update(product["metadata"], call.get("metadata"))
    product["updated"] = int(call.state.world_now())
    return call.state.put(product)


def list_products(call: ApiCall) -> dict[str, Any]:
    items = list(reversed(call.state.all("product")))
    if "active" in call.params:
        items = [p for p in items if p["active"] == bool(call.params["active"])]
    if call.get("ids"):
        items = [p for p in items if p["id"] in call.get("ids")]
    return page(created_filter(items, call.get("created")), call.params, "/v1/products")


def _decimal_string(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return format(Decimal(str(value)).normalize(), "f")


def _tiers(given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tiers = []
    for index, tier in enumerate(given):
        up_to = tier.get("up_to")
        unit = as_int(tier.get("unit_amount"))
        unit_decimal = _decimal_string(tier.get("unit_amount_decimal")) or (str(unit) if unit is not None else None)
        flat = as_int(tier.get("flat_amount"))
        flat_decimal = _decimal_string(tier.get("flat_amount_decimal")) or (str(flat) if flat is not None else None)
        tiers.append(
            {
                "flat_amount": flat if flat is not None else (as_int(flat_decimal) if flat_decimal else None),
                "flat_amount_decimal": flat_decimal,
                "unit_amount": unit,
                "unit_amount_decimal": unit_decimal,
                "up_to": None if up_to == "inf" else as_int(up_to),
            }
        )
        if tiers[-1]["up_to"] is None and index != len(given) - 1:
            raise StripeError(400, "Only the last tier may have up_to=inf.", param=f"tiers[{index}][up_to]")
    if not tiers or tiers[-1]["up_to"] is not None:
        raise StripeError(400, "The last tier must have up_to=inf.", param="tiers")
    return tiers


def _recurring(call: ApiCall, given: dict[str, Any] | None) -> dict[str, Any] | None:
    if not given:
        return None
    usage_type = given.get("usage_type") or "licensed"
    meter_id = given.get("meter")
    if usage_type == "metered":
        if not meter_id:
            raise StripeError(
                400,
                "Metered prices must be backed by a meter (recurring[meter]); usage records are not supported.",
                param="recurring[meter]",
            )
        meter = call.state.get("billing.meter", meter_id, "recurring[meter]")
        if meter["status"] != "active":
            raise StripeError(400, f"The meter {meter_id} is inactive.", param="recurring[meter]")
    elif meter_id:
        raise StripeError(400, "Only metered prices can have a meter.", param="recurring[meter]")
    return {
        "interval": given["interval"],
        "interval_count": int(given.get("interval_count") or 1),
        "meter": meter_id,
        "usage_type": usage_type,
        "trial_period_days": as_int(given.get("trial_period_days")),
    }


def create_price(call: ApiCall) -> dict[str, Any]:
    state = call.state
    params = call.params
    if params.get("product_data"):
        product_id = _product(call, params["product_data"])["id"]
    elif params.get("product"):
        product_id = state.get("product", params["product"], "product")["id"]
    else:
        raise StripeError(400, "Missing required param: product.", code="parameter_missing", param="product")
    scheme = params.get("billing_scheme") or "per_unit"
    unit_amount = as_int(params.get("unit_amount"))
    unit_decimal = _decimal_string(params.get("unit_amount_decimal"))
    tiers = None
    if scheme == "tiered":
        if not params.get("tiers_mode") or not params.get("tiers"):
            raise StripeError(400, "Tiered prices need tiers and tiers_mode.", param="tiers")
        tiers = _tiers(params["tiers"])
        if unit_amount is not None or unit_decimal is not None:
            raise StripeError(400, "Tiered prices cannot have a unit_amount.", param="unit_amount")
    else:
        if unit_amount is not None and unit_decimal is not None:
            raise StripeError(400, "Pass only one of unit_amount and unit_amount_decimal.", param="unit_amount_decimal")
        if unit_amount is None and unit_decimal is None:
            raise StripeError(
                400, "Missing required param: unit_amount.", code="parameter_missing", param="unit_amount"
            )
        if unit_decimal is None:
            unit_decimal = str(unit_amount)
        elif Decimal(unit_decimal) == Decimal(unit_decimal).to_integral_value():
            unit_amount = int(Decimal(unit_decimal))
    lookup_key = params.get("lookup_key")
    if lookup_key:
        holders = [p for p in state.all("price") if p.get("lookup_key") == lookup_key]
        if holders and not params.get("transfer_lookup_key"):
            raise StripeError(
                400,
                f"A price (`{holders[0]['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
        for holder in holders:
            state.put({**holder, "lookup_key": None})
    transform = params.get("transform_quantity")
    recurring = _recurring(call, params.get("recurring"))
    price = shaped(
        "price",
        id=state.new_id("price"),
        active=params.get("active", True) is not False,
        billing_scheme=scheme,
        created=int(state.world_now()),
        currency=str(params["currency"]).lower(),
        custom_unit_amount=None,
        lookup_key=lookup_key or None,
        metadata=metadata_update({}, params.get("metadata")),
        nickname=params.get("nickname"),
        product=product_id,
        recurring=recurring,
        tax_behavior=params.get("tax_behavior") or "unspecified",
        tiers_mode=params.get("tiers_mode") if scheme == "tiered" else None,
        transform_quantity=(
            {"divide_by": int(transform["divide_by"]), "round": transform["round"]} if transform else None
        ),
        type="recurring" if recurring else "one_time",
        unit_amount=unit_amount if scheme == "per_unit" else None,
        unit_amount_decimal=unit_decimal if scheme == "per_unit" else None,
    )
    price["_tiers"] = tiers
    return render(state, state.put(price))


def retrieve_price(call: ApiCall) -> dict[str, Any]:
    return render(call.state, call.state.get("price", call.path["price"], "price"))


def update_price(call: ApiCall) -> dict[str, Any]:
    state = call.state
    price = dict(state.get("price", call.path["price"], "price"))
    if "active" in call.params:
        price["active"] = bool(call.params["active"])
    if "nickname" in call.params:
        price["nickname"] = call.params["nickname"] or None
    if "lookup_key" in call.params:
        key = call.params["lookup_key"] or None
        holders = [p for p in state.all("price") if key and p.get("lookup_key") == key and p["id"] != price["id"]]
        if holders and not call.get("transfer_lookup_key"):
            raise StripeError(400, f"A price (`{holders[0]['id']}`) already uses that lookup key.", param="lookup_key")
        for holder in holders:
            state.put({**holder, "lookup_key": None})
        price["lookup_key"] = key
    price["metadata"] = metadata_update(price["metadata"], call.get("metadata"))
    return render(state, state.put(price))


def list_prices(call: ApiCall) -> dict[str, Any]:
    items = list(reversed(call.state.all("price")))
    params = call.params
    if "active" in params:
        items = [p for p in items if p["active"] == bool(params["active"])]
    if params.get("product"):
        items = [p for p in items if p["product"] == params["product"]]
    if params.get("currency"):
        items = [p for p in items if p["currency"] == params["currency"]]
    if params.get("type"):
        items = [p for p in items if p["type"] == params["type"]]
    if params.get("lookup_keys"):
        items = [p for p in items if p.get("lookup_key") in params["lookup_keys"]]
    recurring = params.get("recurring") or {}
    for key in ("interval", "usage_type", "meter"):
        if recurring.get(key):
            items = [p for p in items if p["recurring"] and p["recurring"].get(key) == recurring[key]]
    items = created_filter(items, params.get("created"))
    return page([render(call.state, p) for p in items], params, "/v1/prices")
