"""Contracts (v1 create, v2 list/get/edit), their commits and credits, customer-level commits/credits, balances."""

from __future__ import annotations

import copy
from typing import Any

from .api_call import ApiCall
from .customers import get_customer
from .errors import ApiError, not_found
from .pagination import page
from .pricing import get_product, get_rate_card, rate_card_by_alias
from .wire_format import EARLIEST_CONTRACT_START, USD_CENTS, format_time, new_id, parse_time, public, to_decimal, upper

_HOUR = 3600


# ---------------------------------------------------------------------------------------------- commits, credits
def _access_schedule(call: ApiCall, spec: dict[str, Any] | None, where: str) -> dict[str, Any]:
    items = []
    for index, item in enumerate((spec or {}).get("schedule_items") or []):
        start = parse_time(item["starting_at"], f"{where}.schedule_items.{index}.starting_at")
        end = parse_time(item["ending_before"], f"{where}.schedule_items.{index}.ending_before")
        if start % _HOUR or end % _HOUR:
            raise ApiError(400, f"{where}.schedule_items.{index}: access schedule times must be hour-aligned")
        if end <= start:
            raise ApiError(400, f"{where}.schedule_items.{index}: ending_before must be after starting_at")
        _check_amount(item["amount"], f"{where}.schedule_items.{index}.amount")
        items.append(
            {
                "id": new_id(call.store, "schedule_item"),
                "amount": item["amount"],
                "starting_at": format_time(start),
                "ending_before": format_time(end),
            }
        )
    return {"credit_type": dict(USD_CENTS), "schedule_items": items}


MAX_AMOUNT = 10**15
"""Emulator limit: amounts are exact decimals of cents; beyond this (ten trillion dollars) they are refused."""


def _check_amount(value: Any, where: str) -> None:
    amount = to_decimal(value)
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise ApiError(400, f"{where}: must be a finite amount below {MAX_AMOUNT} cents")


def _invoice_schedule(call: ApiCall, spec: dict[str, Any], where: str) -> dict[str, Any]:
    if spec.get("recurring_schedule"):
        raise ApiError(400, f"{where}.recurring_schedule: not supported by the local emulator; use schedule_items")
    items = []
    for index, item in enumerate(spec.get("schedule_items") or []):
        amount = item.get("amount")
        unit_price = item.get("unit_price")
        quantity = item.get("quantity", 1)
        if amount is None and unit_price is None:
            raise ApiError(400, f"{where}.schedule_items.{index}: amount or unit_price is required")
        if amount is None:
            amount = float(to_decimal(unit_price) * to_decimal(quantity))
        _check_amount(amount, f"{where}.schedule_items.{index}.amount")
        items.append(
            {
                "id": new_id(call.store, "schedule_item"),
                "timestamp": format_time(parse_time(item["timestamp"], f"{where}.schedule_items.{index}.timestamp")),
                "amount": amount,
                "unit_price": unit_price if unit_price is not None else amount,
                "quantity": quantity,
                "invoice_id": None,
            }
        )
    return {"credit_type": dict(USD_CENTS), "schedule_items": items, "do_not_invoice": bool(spec.get("do_not_invoice"))}


def build_commit_or_credit(
    call: ApiCall, spec: dict[str, Any], *, kind: str, where: str, contract_id: str | None
) -> dict[str, Any]:
    """A commit (`kind` PREPAID/POSTPAID) or credit (`kind` CREDIT) as Metronome returns it."""
    product = get_product(call, spec["product_id"])
    if product["type"] != "FIXED":
        raise ApiError(400, f"{where}.product_id: commits and credits need a FIXED product")
    if spec.get("specifiers") and (spec.get("applicable_product_ids") or spec.get("applicable_product_tags")):
        raise ApiError(400, f"{where}.specifiers: cannot be combined with applicable_product_ids/tags")
    for pid in spec.get("applicable_product_ids") or []:
        if call.store.get("product", pid) is None:
            raise ApiError(400, f"{where}.applicable_product_ids: no product {pid}")
    if not (spec.get("access_schedule") or {}).get("schedule_items") and kind != "POSTPAID":
        raise ApiError(400, f"{where}.access_schedule: schedule_items are required")
    item: dict[str, Any] = {
        "id": new_id(call.store, "commit" if kind != "CREDIT" else "credit"),
        "type": kind,
        "product": {"id": product["id"], "name": product["current"]["name"]},
        "access_schedule": _access_schedule(call, spec.get("access_schedule"), f"{where}.access_schedule"),
        "created_at": format_time(call.now()),
        "_seq": call.now(),
    }
    if contract_id:
        item["contract"] = {"id": contract_id}
    for key in (
        "name",
        "description",
        "priority",
        "applicable_product_ids",
        "applicable_product_tags",
        "specifiers",
        "rollover_fraction",
        "netsuite_sales_order_id",
        "custom_fields",
        "applicable_contract_ids",
        "salesforce_opportunity_id",
    ):
        if spec.get(key) is not None:
            item[key] = spec[key]
    if spec.get("rate_type"):
        item["rate_type"] = upper(spec["rate_type"])
    if kind != "CREDIT" and spec.get("invoice_schedule"):
        item["invoice_schedule"] = _invoice_schedule(call, spec["invoice_schedule"], f"{where}.invoice_schedule")
    if kind == "POSTPAID" and not item["access_schedule"]["schedule_items"]:
        raise ApiError(400, f"{where}.access_schedule: POSTPAID commits need an access schedule")
    return item


def _commit_kind(spec: dict[str, Any]) -> str:
    return str(upper(spec["type"]))


# ---------------------------------------------------------------------------------------------- contracts
def _usage_statement_schedule(body: dict[str, Any], start: float) -> dict[str, Any]:
    spec = body.get("usage_statement_schedule") or {"frequency": "MONTHLY"}
    schedule: dict[str, Any] = {
        "frequency": upper(spec["frequency"]),
        "day": upper(spec.get("day") or "FIRST_OF_MONTH"),
    }
    if schedule["day"] == "CUSTOM_DATE":
        if not spec.get("billing_anchor_date"):
            raise ApiError(400, "usage_statement_schedule.billing_anchor_date: required with day CUSTOM_DATE")
        schedule["_billing_anchor_ts"] = parse_time(spec["billing_anchor_date"], "billing_anchor_date")
        schedule["billing_anchor_date"] = format_time(schedule["_billing_anchor_ts"])
    elif schedule["day"] == "CONTRACT_START" or schedule["frequency"] == "WEEKLY":
        schedule["billing_anchor_date"] = format_time(start)
    else:
        from .statement_periods import billing_anchor

        schedule["billing_anchor_date"] = format_time(billing_anchor(schedule, start))
    if spec.get("invoice_generation_starting_at"):
        schedule["invoice_generation_starting_at"] = format_time(
            parse_time(
                spec["invoice_generation_starting_at"], "usage_statement_schedule.invoice_generation_starting_at"
            )
        )
    return schedule


def create_contract(call: ApiCall) -> Any:
    body = call.body
    with call.store.lock:
        customer = get_customer(call, body["customer_id"])
        scope = f"contract:{customer['id']}"
        call.check_uniqueness_key(scope, body.get("uniqueness_key"))
        start = parse_time(body["starting_at"], "starting_at")
        end = parse_time(body["ending_before"], "ending_before") if body.get("ending_before") else None
        if end is not None and end <= start:
            raise ApiError(400, "ending_before: must be after starting_at")
        if start < EARLIEST_CONTRACT_START:
            raise ApiError(400, "starting_at: the local emulator only supports contracts starting from 2000-01-01")
        if body.get("rate_card_id"):
            rate_card_id = get_rate_card(call, body["rate_card_id"])["id"]
        elif body.get("rate_card_alias"):
            rate_card_id = rate_card_by_alias(call, body["rate_card_alias"])["id"]
        else:
            rate_card_id = None
        contract_id = new_id(call.store, "contract")
        provider = _contract_billing_provider(call, customer["id"], body.get("billing_provider_configuration"))
        commits = [
            build_commit_or_credit(call, c, kind=_commit_kind(c), where=f"commits.{i}", contract_id=contract_id)
            for i, c in enumerate(body.get("commits") or [])
        ]
        credits = [
            build_commit_or_credit(call, c, kind="CREDIT", where=f"credits.{i}", contract_id=contract_id)
            for i, c in enumerate(body.get("credits") or [])
        ]
        contract: dict[str, Any] = {
            "id": contract_id,
            "customer_id": customer["id"],
            "starting_at": format_time(start),
            "commits": commits,
            "credits": credits,
            "overrides": [],
            "scheduled_charges": [],
            "transitions": [],
            "usage_filter": [],
            "created_at": format_time(call.now()),
            "created_by": "billmig-local",
            "usage_statement_schedule": _usage_statement_schedule(body, start),
            "custom_fields": body.get("custom_fields") or {},
            "_starting_ts": start,
            "_ending_ts": end,
            "_seq": call.store.count("contract"),
        }
        for key in (
            "name",
            "uniqueness_key",
            "net_payment_terms_days",
            "netsuite_sales_order_id",
            "salesforce_opportunity_id",
            "total_contract_value",
        ):
            if body.get(key) is not None:
                contract[key] = body[key]
        if rate_card_id:
            contract["rate_card_id"] = rate_card_id
        if end is not None:
            contract["ending_before"] = format_time(end)
        if provider is not None:
            contract["customer_billing_provider_configuration"] = provider
            contract["_billing_provider_configuration_id"] = provider["id"]
        if body.get("prepaid_balance_threshold_configuration"):
            contract["prepaid_balance_threshold_configuration"] = _threshold_configuration(
                call, body["prepaid_balance_threshold_configuration"], "prepaid_balance_threshold_configuration"
            )
        call.claim_uniqueness_key(scope, body.get("uniqueness_key"), contract_id)
        call.store.put("contract", contract_id, contract)
        call.engine.mark_changed(customer["id"])
        if contract.get("prepaid_balance_threshold_configuration"):
            call.engine.recharge_if_needed(customer["id"])  # a new configuration is evaluated at once
    return {"data": {"id": contract_id}}


def _contract_billing_provider(call: ApiCall, customer_id: str, spec: dict[str, Any] | None) -> Any:
    if not spec:
        return None
    configs = [
        c
        for c in call.store.where("billing_provider_configuration", "customer_id", customer_id)
        if not c.get("archived_at")
    ]
    if spec.get("billing_provider_configuration_id"):
        found = next((c for c in configs if c["id"] == spec["billing_provider_configuration_id"]), None)
        if found is None:
            raise ApiError(
                400, "billing_provider_configuration.billing_provider_configuration_id: not found for this customer"
            )
    else:
        provider = spec.get("billing_provider")
        method = spec.get("delivery_method") or "direct_to_billing_provider"
        found = next((c for c in configs if c["billing_provider"] == provider and c["delivery_method"] == method), None)
        if found is None:
            raise ApiError(400, f"billing_provider_configuration: the customer has no {provider} configuration")
    return {
        "id": found["id"],
        "billing_provider": found["billing_provider"],
        "delivery_method": found["delivery_method"],
    }


def get_contract(call: ApiCall, customer_id: str, contract_id: str) -> dict[str, Any]:
    contract = call.store.get("contract", contract_id)
    if contract is None or contract["customer_id"] != customer_id:
        raise not_found("contract", contract_id)
    return contract


def _render_contract(call: ApiCall, contract: dict[str, Any], *, ledgers: bool, balances: bool, billing: Any) -> Any:
    data = public(contract)
    now = call.now()
    for kind in ("commits", "credits"):
        rendered = []
        for raw, item in zip(contract.get(kind, []), data.get(kind, []), strict=True):
            source = {**raw, "_contract_id": contract["id"]}
            if balances:
                item["balance"] = call.engine.balance_of(source, billing, now)
            if ledgers:
                item["ledger"] = call.engine.ledger_of(source, billing, now)
            rendered.append(item)
        data[kind] = rendered
    schedule = data.get("usage_statement_schedule") or {}
    data["usage_statement_schedule"] = schedule
    return data


def retrieve_contract_v2(call: ApiCall) -> Any:
    body = call.body
    contract = get_contract(call, body["customer_id"], body["contract_id"])
    billing = call.engine.bill_customer(body["customer_id"])
    return {
        "data": _render_contract(
            call,
            contract,
            ledgers=bool(body.get("include_ledgers")),
            balances=bool(body.get("include_balance")),
            billing=billing,
        )
    }


def list_contracts_v2(call: ApiCall) -> Any:
    body = call.body
    get_customer(call, body["customer_id"])
    contracts = [
        c
        for c in call.store.where("contract", "customer_id", body["customer_id"])
        if body.get("include_archived") or not c.get("archived_at")
    ]
    if body.get("covering_date"):
        at = parse_time(body["covering_date"], "covering_date")
        contracts = [c for c in contracts if c["_starting_ts"] <= at and (c["_ending_ts"] or float("inf")) > at]
    if body.get("starting_at"):
        at = parse_time(body["starting_at"], "starting_at")
        contracts = [c for c in contracts if (c["_ending_ts"] or float("inf")) > at]
    contracts.sort(key=lambda c: (c["_starting_ts"], c["_seq"]))
    billing = call.engine.bill_customer(body["customer_id"])
    chunk, cursor = page(contracts, body.get("limit"), body.get("cursor"), default=20, maximum=100)
    data = [
        _render_contract(
            call,
            c,
            ledgers=bool(body.get("include_ledgers")),
            balances=bool(body.get("include_balance")),
            billing=billing,
        )
        for c in chunk
    ]
    return {"data": data, "cursor": cursor} if cursor else {"data": data}


def _threshold_configuration(call: ApiCall, spec: dict[str, Any], where: str) -> dict[str, Any]:
    _check_amount(spec["threshold_amount"], f"{where}.threshold_amount")
    _check_amount(spec["recharge_to_amount"], f"{where}.recharge_to_amount")
    threshold = to_decimal(spec["threshold_amount"])
    recharge_to = to_decimal(spec["recharge_to_amount"])
    if threshold < 500:
        raise ApiError(400, f"{where}.threshold_amount: must be at least 500 cents ($5)", "invalid_threshold")
    if recharge_to < threshold + 1000:
        raise ApiError(
            400,
            f"{where}.recharge_to_amount: must be at least threshold_amount + 1000 cents ($10)",
            "invalid_recharge_amount",
        )
    commit = dict(spec.get("commit") or {})
    if not commit.get("product_id"):
        raise ApiError(400, f"{where}.commit.product_id: required", "invalid_commit")
    product = get_product(call, commit["product_id"])
    if product["type"] != "FIXED":
        raise ApiError(400, f"{where}.commit.product_id: must be a FIXED product", "invalid_commit")
    gate = dict(spec.get("payment_gate_config") or {"payment_gate_type": "NONE"})
    gate["payment_gate_type"] = upper(gate.get("payment_gate_type", "NONE"))
    if gate["payment_gate_type"] == "STRIPE":
        stripe_config = dict(gate.get("stripe_config") or {"payment_type": "INVOICE"})
        stripe_config["payment_type"] = upper(stripe_config.get("payment_type") or "INVOICE")
        if stripe_config["payment_type"] != "INVOICE":
            raise ApiError(
                400,
                f"{where}.payment_gate_config.stripe_config.payment_type: the local emulator collects a gated "
                "payment with a Stripe invoice only (INVOICE)",
                "unsupported_payment_type",
            )
        gate["stripe_config"] = stripe_config
    return {
        "is_enabled": bool(spec["is_enabled"]),
        "threshold_amount": spec["threshold_amount"],
        "recharge_to_amount": spec["recharge_to_amount"],
        "commit": commit,
        "payment_gate_config": gate,
        "_revision": int(spec.get("_revision") or 0) + 1,  # a new idempotency scope for its gated payments
    }


def edit_contract_v2(call: ApiCall) -> Any:
    body = call.body
    with call.store.lock:
        contract = copy.deepcopy(get_contract(call, body["customer_id"], body["contract_id"]))
        scope = f"edit:{contract['id']}"
        call.check_uniqueness_key(scope, body.get("uniqueness_key"))
        for i, spec in enumerate(body.get("add_commits") or []):
            contract["commits"].append(
                build_commit_or_credit(
                    call, spec, kind=_commit_kind(spec), where=f"add_commits.{i}", contract_id=contract["id"]
                )
            )
        for i, spec in enumerate(body.get("add_credits") or []):
            contract["credits"].append(
                build_commit_or_credit(call, spec, kind="CREDIT", where=f"add_credits.{i}", contract_id=contract["id"])
            )
        for i, spec in enumerate(body.get("update_commits") or []):
            _update_item(call, contract["commits"], spec, "commit_id", f"update_commits.{i}")
        for i, spec in enumerate(body.get("update_credits") or []):
            _update_item(call, contract["credits"], spec, "credit_id", f"update_credits.{i}")
        if body.get("add_prepaid_balance_threshold_configuration"):
            if contract.get("prepaid_balance_threshold_configuration"):
                raise ApiError(
                    400,
                    "add_prepaid_balance_threshold_configuration: the contract already has one; "
                    "use update_prepaid_balance_threshold_configuration",
                    "already_configured",
                )
            contract["prepaid_balance_threshold_configuration"] = _threshold_configuration(
                call, body["add_prepaid_balance_threshold_configuration"], "add_prepaid_balance_threshold_configuration"
            )
        if body.get("update_prepaid_balance_threshold_configuration"):
            current = contract.get("prepaid_balance_threshold_configuration")
            if not current:
                raise ApiError(
                    400,
                    "update_prepaid_balance_threshold_configuration: the contract has no prepaid "
                    "balance threshold configuration",
                    "not_configured",
                )
            merged = {
                **current,
                **{k: v for k, v in body["update_prepaid_balance_threshold_configuration"].items() if v is not None},
            }
            if "commit" in body["update_prepaid_balance_threshold_configuration"]:
                merged["commit"] = {
                    **current["commit"],
                    **body["update_prepaid_balance_threshold_configuration"]["commit"],
                }
            contract["prepaid_balance_threshold_configuration"] = _threshold_configuration(
                call, merged, "update_prepaid_balance_threshold_configuration"
            )
        call.claim_uniqueness_key(scope, body.get("uniqueness_key"), contract["id"])
        call.store.put("contract", contract["id"], contract)
        call.engine.mark_changed(contract["customer_id"])
        # a threshold configuration change is evaluated at once
        call.engine.recharge_if_needed(contract["customer_id"])
    return {"data": {"id": contract["id"]}}


def _update_item(call: ApiCall, items: list[dict[str, Any]], spec: dict[str, Any], id_key: str, where: str) -> None:
    item = next((c for c in items if c["id"] == spec[id_key]), None)
    if item is None:
        raise ApiError(400, f"{where}.{id_key}: no such {id_key[:-3]} on this contract {spec[id_key]}")
    for key in (
        "name",
        "description",
        "priority",
        "applicable_product_ids",
        "applicable_product_tags",
        "rollover_fraction",
        "netsuite_sales_order_id",
    ):
        if key in spec:
            if spec[key] is None:
                item.pop(key, None)
            else:
                item[key] = spec[key]
    if spec.get("product_id"):
        product = get_product(call, spec["product_id"])
        item["product"] = {"id": product["id"], "name": product["current"]["name"]}
    access = spec.get("access_schedule") or {}
    schedule = item.setdefault("access_schedule", {"credit_type": dict(USD_CENTS), "schedule_items": []})
    _edit_schedule(call, schedule, access, f"{where}.access_schedule", timed=("starting_at", "ending_before"))
    invoice = spec.get("invoice_schedule") or {}
    if invoice:
        target = item.setdefault(
            "invoice_schedule", {"credit_type": dict(USD_CENTS), "schedule_items": [], "do_not_invoice": False}
        )
        _edit_schedule(call, target, invoice, f"{where}.invoice_schedule", timed=("timestamp",))


def _edit_schedule(
    call: ApiCall, schedule: dict[str, Any], edit: dict[str, Any], where: str, *, timed: tuple[str, ...]
) -> None:
    items = schedule["schedule_items"]
    for remove in edit.get("remove_schedule_items") or []:
        if not any(i["id"] == remove["id"] for i in items):
            raise ApiError(400, f"{where}.remove_schedule_items: no schedule item {remove['id']}")
        items[:] = [i for i in items if i["id"] != remove["id"]]
    for update in edit.get("update_schedule_items") or []:
        target = next((i for i in items if i["id"] == update["id"]), None)
        if target is None:
            raise ApiError(400, f"{where}.update_schedule_items: no schedule item {update['id']}")
        for key, value in update.items():
            if key == "id" or value is None:
                continue
            target[key] = format_time(parse_time(value, f"{where}.{key}")) if key in timed else value
    for add in edit.get("add_schedule_items") or []:
        entry: dict[str, Any] = {"id": new_id(call.store, "schedule_item")}
        for key, value in add.items():
            entry[key] = format_time(parse_time(value, f"{where}.{key}")) if key in timed else value
        if "timestamp" in timed:
            entry.setdefault("quantity", 1)
            entry.setdefault("unit_price", entry.get("amount", 0))
        items.append(entry)
    if "starting_at" in timed:
        for index, entry in enumerate(items):
            if parse_time(entry["starting_at"]) % _HOUR or parse_time(entry["ending_before"]) % _HOUR:
                raise ApiError(400, f"{where}.schedule_items.{index}: access schedule times must be hour-aligned")


# ---------------------------------------------------------------------------------------------- customer level
def _create_customer_level(call: ApiCall, kind: str) -> Any:
    body = call.body
    with call.store.lock:
        customer = get_customer(call, body["customer_id"])
        scope = f"customer_{kind.lower()}:{customer['id']}"
        call.check_uniqueness_key(scope, body.get("uniqueness_key"))
        item = build_commit_or_credit(call, body, kind=kind, where="body", contract_id=None)
        item["_customer_id"] = customer["id"]
        if body.get("invoice_contract_id"):
            get_contract(call, customer["id"], body["invoice_contract_id"])
            item["invoice_contract"] = {"id": body["invoice_contract_id"]}
        call.claim_uniqueness_key(scope, body.get("uniqueness_key"), item["id"])
        call.store.put("customer_commit", item["id"], item)
        call.engine.mark_changed(customer["id"])
    return {"data": {"id": item["id"]}}


def create_customer_commit(call: ApiCall) -> Any:
    return _create_customer_level(call, _commit_kind(call.body))


def create_customer_credit(call: ApiCall) -> Any:
    return _create_customer_level(call, "CREDIT")


def list_balances(call: ApiCall) -> Any:
    body = call.body
    customer = get_customer(call, body["customer_id"])
    billing = call.engine.bill_customer(customer["id"])
    now = call.now()
    sources = [s for s in billing.sources if s["_contract_id"] is None or body.get("include_contract_balances")]
    if body.get("id"):
        sources = [s for s in sources if s["id"] == body["id"]]
    if body.get("covering_date"):
        at = parse_time(body["covering_date"], "covering_date")
        sources = [s for s in sources if _covers(s, at)]
    if body.get("effective_before"):
        before = parse_time(body["effective_before"], "effective_before")
        sources = [s for s in sources if _first_start(s) < before]
    if body.get("starting_at"):
        after = parse_time(body["starting_at"], "starting_at")
        sources = [s for s in sources if _first_start(s) >= after]
    rendered = []
    for source in sources:
        balance = call.engine.balance_of(source, billing, now)
        if body.get("exclude_zero_balances") and balance == 0:
            continue
        item = public(source)
        if body.get("include_balance"):
            item["balance"] = balance
        if body.get("include_ledgers"):
            item["ledger"] = call.engine.ledger_of(source, billing, now)
        rendered.append(item)
    chunk, next_page = page(rendered, body.get("limit"), body.get("next_page"), default=25)
    return {"data": chunk, "next_page": next_page}


def _first_start(source: dict[str, Any]) -> float:
    items = source["access_schedule"]["schedule_items"]
    return min((parse_time(i["starting_at"]) for i in items), default=0.0)


def _covers(source: dict[str, Any], at: float) -> bool:
    return any(
        parse_time(i["starting_at"]) <= at < parse_time(i["ending_before"])
        for i in source["access_schedule"]["schedule_items"]
    )


def update_contract_end_date(call: ApiCall) -> Any:
    """`/v1/contracts/updateEndDate`: ending early truncates draft usage statements (Metronome: "Ending a contract
    early will impact draft usage statements, truncate any terms, and remove upcoming scheduled invoices"); an end
    before the last finalized invoice needs `allow_ending_before_finalized_invoice`. No `ending_before` = perpetual."""
    body = call.body
    with call.store.lock:
        contract = copy.deepcopy(get_contract(call, body["customer_id"], body["contract_id"]))
        end = parse_time(body["ending_before"], "ending_before") if body.get("ending_before") else None
        if end is not None:
            if end <= parse_time(contract["starting_at"]):
                raise ApiError(400, "ending_before: must be after starting_at")
            last_final = call.engine.last_finalized_end(contract["customer_id"])
            if last_final is not None and end < last_final and not body.get("allow_ending_before_finalized_invoice"):
                raise ApiError(400, "ending_before: a finalized invoice ends after it")
            contract["ending_before"] = format_time(end)
        else:
            contract.pop("ending_before", None)
        contract["_ending_ts"] = end
        call.store.put("contract", contract["id"], contract)
        call.engine.mark_changed(contract["customer_id"])
    return {"data": {"id": contract["id"]}}
