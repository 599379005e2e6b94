"""Customers: ingest aliases (unique), billing provider configurations, billable status with `effective_at`."""

from __future__ import annotations

import os
from typing import Any

from .api_call import ApiCall
from .errors import ApiError, not_found
from .pagination import page
from .wire_format import derived_id, format_time, new_id, parse_time, public

DEFAULT_BILLABLE_STATUS = os.environ.get("BILLMIG_METRONOME_DEFAULT_BILLABLE_STATUS", "billable")
"""New customers' status before any setBillableStatus (an account-level setting at Metronome)."""


def get_customer(call: ApiCall, customer_id: str) -> dict[str, Any]:
    customer = call.store.get("customer", customer_id)
    if customer is None:
        raise not_found("customer", customer_id)
    return customer


def _claim_aliases(call: ApiCall, aliases: list[str], customer_id: str) -> None:
    if len(set(aliases)) != len(aliases):
        raise ApiError(400, "ingest_aliases: must be unique")
    for alias in aliases:
        owner = call.engine.aliases.get(alias)
        if (owner is not None and owner != customer_id) or (
            alias != customer_id and call.store.get("customer", alias) is not None
        ):
            raise ApiError(409, f"ingest alias {alias!r} is already in use by another customer")


def _render(customer: dict[str, Any], now: float) -> dict[str, Any]:
    data: dict[str, Any] = public(customer)
    current = customer.get("_initial_billable_status", DEFAULT_BILLABLE_STATUS)
    effective_at = None
    for change in customer.get("_billable_history", []):
        if change["_ts"] <= now:
            current, effective_at = change["value"], change["effective_at"]
    data["current_billable_status"] = {"value": current, "effective_at": effective_at}
    return data


def default_delivery_method_id(provider: str, method: str) -> str:
    """The account's delivery method for a provider (Metronome's `delivery_method_id` when none is named)."""
    return derived_id("delivery_method", provider, method)


def _same_configuration(existing: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Metronome allows several configurations per provider only when they differ (its example: two Stripe
    configurations "that each have a distinct collection_method"); an identical one is refused."""
    if existing.get("archived_at") or existing["billing_provider"] != spec["billing_provider"]:
        return False
    if existing["delivery_method_id"] != spec["delivery_method_id"]:
        return False
    if spec["billing_provider"] == "stripe":
        return (existing["configuration"] or {}).get("stripe_collection_method") == (spec["configuration"] or {}).get(
            "stripe_collection_method"
        )
    return bool(existing["configuration"] == spec["configuration"])


def _add_billing_configuration(call: ApiCall, customer_id: str, spec: dict[str, Any], where: str) -> dict[str, Any]:
    method = spec.get("delivery_method") or "direct_to_billing_provider"
    method_id = spec.get("delivery_method_id") or default_delivery_method_id(spec["billing_provider"], method)
    config = {
        "customer_id": customer_id,
        "billing_provider": spec["billing_provider"],
        "configuration": spec.get("configuration") or {},
        "delivery_method": method,
        "delivery_method_id": method_id,
        "archived_at": None,
    }
    for existing in customer_billing_configurations(call, customer_id):
        if _same_configuration(existing, config):
            raise ApiError(
                400,
                f"{where}: customer {customer_id} already has a {config['billing_provider']} billing provider "
                f"configuration for this delivery method ({existing['id']}); archive it first",
            )
    config = {"id": new_id(call.store, "billing_provider_configuration"), **config}
    if spec.get("tax_provider"):
        config["tax_provider"] = spec["tax_provider"]
    call.store.put("billing_provider_configuration", config["id"], config)
    return config


def customer_billing_configurations(call: ApiCall, customer_id: str) -> list[dict[str, Any]]:
    return call.store.where("billing_provider_configuration", "customer_id", customer_id)


def _render_configuration(config: dict[str, Any]) -> dict[str, Any]:
    delivery: dict[str, Any] = {}
    if config["billing_provider"] == "stripe" and config["delivery_method"] == "direct_to_billing_provider":
        delivery = {"stripe_account_id": "acct_emulator", "leave_invoices_in_draft": False}
    return {
        "id": config["id"],
        "billing_provider": config["billing_provider"],
        "customer_id": config["customer_id"],
        "configuration": config["configuration"],
        "delivery_method": config["delivery_method"],
        "delivery_method_id": config["delivery_method_id"],
        "delivery_method_configuration": delivery,
        "archived_at": config.get("archived_at"),
    }


def create_customer(call: ApiCall) -> Any:
    body = call.body
    aliases = list(body.get("ingest_aliases") or [])
    now = format_time(call.now())
    with call.store.lock:
        customer_id = new_id(call.store, "customer")
        _claim_aliases(call, aliases, customer_id)
        customer = {
            "id": customer_id,
            "external_id": body.get("external_id") or (aliases[0] if aliases else customer_id),
            "ingest_aliases": aliases,
            "name": str(body["name"])[:160],
            "customer_config": {"salesforce_account_id": None},
            "custom_fields": body.get("custom_fields") or {},
            "created_at": now,
            "updated_at": now,
            "_initial_billable_status": DEFAULT_BILLABLE_STATUS,
            "_billable_history": [],
        }
        call.store.put("customer", customer_id, customer)
        for alias in aliases:
            call.engine.aliases[alias] = customer_id
        for index, spec in enumerate(body.get("customer_billing_provider_configurations") or []):
            _add_billing_configuration(call, customer_id, spec, f"customer_billing_provider_configurations.{index}")
    data = public(customer)
    del data["customer_config"], data["created_at"], data["updated_at"]
    return {"data": data}


def list_customers(call: ApiCall) -> Any:
    customers = [c for c in call.store.all("customer") if not c.get("archived_at")]
    alias = call.query.get("ingest_alias")
    if alias is not None:
        customers = [c for c in customers if alias in c.get("ingest_aliases", [])]
    if call.query.get("customer_ids"):
        wanted = set(call.query["customer_ids"].split(","))
        customers = [c for c in customers if c["id"] in wanted]
    chunk, next_page = page(customers, call.query.get("limit"), call.query.get("next_page"))
    return {"data": [_render(c, call.now()) for c in chunk], "next_page": next_page}


def retrieve_customer(call: ApiCall) -> Any:
    return {"data": _render(get_customer(call, call.path["customer_id"]), call.now())}


def set_ingest_aliases(call: ApiCall) -> Any:
    with call.store.lock:
        customer = get_customer(call, call.path["customer_id"])
        aliases = list(call.body["ingest_aliases"])
        _claim_aliases(call, aliases, customer["id"])
        for alias in customer.get("ingest_aliases", []):
            call.engine.aliases.pop(alias, None)
        for alias in aliases:
            call.engine.aliases[alias] = customer["id"]
        customer = {**customer, "ingest_aliases": aliases, "updated_at": format_time(call.now())}
        call.store.put("customer", customer["id"], customer)
        call.engine.mark_changed(customer["id"])
    return None


def set_billing_configurations(call: ApiCall) -> Any:
    created = []
    with call.store.lock:
        for spec in call.body["data"]:
            get_customer(call, spec["customer_id"])
        for index, spec in enumerate(call.body["data"]):
            created.append(_add_billing_configuration(call, spec["customer_id"], spec, f"data.{index}"))
    keys = ("id", "billing_provider", "customer_id", "configuration", "delivery_method_id", "tax_provider")
    return {"data": [{k: c[k] for k in keys if k in c} for c in created]}


def get_billing_configurations(call: ApiCall) -> Any:
    customer = get_customer(call, call.body["customer_id"])
    configs = customer_billing_configurations(call, customer["id"])
    if not call.body.get("include_archived"):
        configs = [c for c in configs if not c.get("archived_at")]
    return {"data": [_render_configuration(c) for c in configs]}


def archive_billing_configurations(call: ApiCall) -> Any:
    """Takes effect at once: contracts on an archived configuration stop delivering and their threshold recharge
    configurations are disabled (all ids are checked before any is archived)."""
    body = call.body
    with call.store.lock:
        customer = get_customer(call, body["customer_id"])
        owned = {c["id"]: c for c in customer_billing_configurations(call, customer["id"])}
        ids = list(body["customer_billing_provider_configuration_ids"])
        for index, config_id in enumerate(ids):
            if config_id not in owned:
                raise ApiError(
                    400,
                    f"customer_billing_provider_configuration_ids.{index}: no billing provider configuration "
                    f"{config_id} for customer {customer['id']}",
                )
        stamp = format_time(call.now())
        for config_id in ids:
            if not owned[config_id].get("archived_at"):
                call.store.put("billing_provider_configuration", config_id, {**owned[config_id], "archived_at": stamp})
        for contract in call.engine.contracts_of(customer["id"]):
            threshold = contract.get("prepaid_balance_threshold_configuration")
            if contract.get("_billing_provider_configuration_id") in ids and threshold:
                threshold["is_enabled"] = False
                call.store.put("contract", contract["id"], contract)
        call.engine.mark_changed(customer["id"])
    return {"data": {"customer_id": customer["id"], "customer_billing_provider_configuration_ids": ids}}


def set_billable_status(call: ApiCall) -> Any:
    body = call.body
    with call.store.lock:
        customer = get_customer(call, body["customer_id"])
        effective = parse_time(body["effective_at"], "effective_at")
        last_final = call.engine.last_finalized_end(customer["id"])
        if last_final is not None and effective < last_final:
            raise ApiError(
                400,
                "effective_at: cannot be before the end of the customer's last finalized invoice "
                f"({format_time(last_final)})",
            )
        # a change replaces only one at the same instant: earlier and later scheduled changes both stand
        history = [h for h in customer.get("_billable_history", []) if h["_ts"] != effective]
        history.append({"value": body["billable_status"], "effective_at": format_time(effective), "_ts": effective})
        history.sort(key=lambda h: h["_ts"])
        customer = {**customer, "_billable_history": history, "updated_at": format_time(call.now())}
        call.store.put("customer", customer["id"], customer)
        call.engine.mark_changed(customer["id"])
    current = call.engine.billable_status_at(customer, call.now())
    return {"data": {"id": customer["id"], "current_billable_status": current}}


def billable_status_schedule(store: Any, customer_id: str) -> list[dict[str, str]]:
    """Every billable-status change of a customer, past and scheduled, oldest first (not a Metronome read: its API
    shows only the status in effect now)."""
    customer = store.get("customer", customer_id)
    if customer is None:
        return []
    return [{"value": h["value"], "effective_at": h["effective_at"]} for h in customer.get("_billable_history", [])]
