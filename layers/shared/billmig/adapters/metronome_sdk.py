"""`MetronomeTarget` on the official SDK (`metronome-sdk` 4.x).

Errors are typed so Step Functions retries only 429s and outages. Creates whose 409 means "already done" (a used
ingest alias or `uniqueness_key`) run with the SDK's retries off: with them on, the SDK sends a 409 three times
before it surfaces. Every other POST carries an `Idempotency-Key` header (decisions.md (d)); a 409 on that header is
a reused key with other parameters, a defect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

import metronome
from metronome import Metronome

from billmig.errors import IdempotencyKeyReused, VendorRejected, VendorThrottled, VendorUnavailable
from billmig.metronome.errors import MetronomeAlreadyExists
from billmig.metronome.ports import (
    BillingProviderConfiguration,
    ContractBalance,
    MetronomeContract,
    MetronomeCustomer,
    MetronomeInvoice,
    MetronomeInvoiceLine,
    MetronomeProduct,
)
from billmig.parity.ports import UsageProduct

_T = TypeVar("_T")
STRIPE: Final[Literal["stripe"]] = "stripe"
DELIVERY: Final[Literal["direct_to_billing_provider"]] = "direct_to_billing_provider"


def _message(exc: metronome.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc)


def typed_metronome_call(what: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except metronome.RateLimitError as exc:
        raise VendorThrottled(f"Metronome {what}: {_message(exc)}") from exc
    except metronome.ConflictError as exc:
        message = _message(exc)
        if "idempotency" in message.lower():
            raise IdempotencyKeyReused(f"Metronome {what}: {message}") from exc
        raise MetronomeAlreadyExists(f"Metronome {what}: {message}") from exc
    except metronome.InternalServerError as exc:
        raise VendorUnavailable(f"Metronome {what}: {_message(exc)}") from exc
    except metronome.APIStatusError as exc:
        if exc.status_code >= 500:
            raise VendorUnavailable(f"Metronome {what}: {_message(exc)}") from exc
        raise VendorRejected(f"Metronome {what}: {exc.status_code} {_message(exc)}") from exc
    except metronome.APIConnectionError as exc:  # timeouts included
        raise VendorUnavailable(f"Metronome {what}: {exc}") from exc


def _headers(idempotency_key: str) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key}


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _cents(value: Any) -> int:
    return round(float(value or 0))


class MetronomeSDKTarget:
    def __init__(self, client: Metronome) -> None:
        self._client = client
        self._once = client.with_options(max_retries=0)

    @classmethod
    def connect(cls, bearer_token: str, base_url: str | None = None) -> MetronomeSDKTarget:
        return cls(Metronome(bearer_token=bearer_token, base_url=base_url or None, max_retries=2))

    # -- catalogue --------------------------------------------------------------------------------------------------
    def rate_cards(self) -> dict[str, str]:
        cards = typed_metronome_call("list rate cards", lambda: list(self._client.v1.contracts.rate_cards.list()))
        return {card.name: card.id for card in cards}

    def products(self) -> list[MetronomeProduct]:
        found = typed_metronome_call("list products", lambda: list(self._client.v1.contracts.products.list()))
        return [MetronomeProduct(p.id, p.current.name, str(p.type)) for p in found]

    # -- customers --------------------------------------------------------------------------------------------------
    def customer_by_alias(self, alias: str) -> MetronomeCustomer | None:
        page = typed_metronome_call(
            f"find customer {alias}", lambda: self._client.v1.customers.list(ingest_alias=alias, limit=2)
        )
        found = [c for c in page.data if alias in (c.ingest_aliases or [])]
        return _customer(found[0].to_dict()) if found else None

    def customer(self, customer_id: str) -> MetronomeCustomer:
        found = typed_metronome_call(
            f"retrieve customer {customer_id}", lambda: self._client.v1.customers.retrieve(customer_id=customer_id)
        )
        return _customer(found.data.to_dict())

    def create_customer(
        self, *, name: str, alias: str, stripe_customer_id: str, idempotency_key: str
    ) -> MetronomeCustomer:
        made = typed_metronome_call(
            f"create customer {alias}",
            lambda: self._once.v1.customers.create(
                name=name,
                ingest_aliases=[alias],
                customer_billing_provider_configurations=[
                    {
                        "billing_provider": STRIPE,
                        "delivery_method": DELIVERY,
                        "configuration": {"stripe_customer_id": stripe_customer_id},
                    }
                ],
                extra_headers=_headers(idempotency_key),
            ),
        )
        return _customer(made.data.to_dict())

    def billing_configurations(self, customer_id: str) -> list[BillingProviderConfiguration]:
        found = typed_metronome_call(
            f"billing provider configurations of {customer_id}",
            lambda: self._client.v1.customers.retrieve_billing_configurations(customer_id=customer_id),
        )
        return [
            BillingProviderConfiguration(
                id=c.id,
                billing_provider=str(c.billing_provider),
                delivery_method=str(c.delivery_method),
                stripe_customer_id=_str_or_none((c.configuration or {}).get("stripe_customer_id")),
                archived=c.archived_at is not None,
            )
            for c in found.data
        ]

    def add_stripe_configuration(self, customer_id: str, stripe_customer_id: str, idempotency_key: str) -> str:
        made = typed_metronome_call(
            f"set billing provider configuration of {customer_id}",
            lambda: self._client.v1.customers.set_billing_configurations(
                data=[
                    {
                        "billing_provider": STRIPE,
                        "customer_id": customer_id,
                        "delivery_method": DELIVERY,
                        "configuration": {"stripe_customer_id": stripe_customer_id},
                    }
                ],
                extra_headers=_headers(idempotency_key),
            ),
        )
        return str(made.data[0].id)

    def set_billable_status(self, customer_id: str, status: str, effective_at: datetime, idempotency_key: str) -> None:
        # No SDK method (metronome.md): a plain POST through the client, typed and keyed like the rest.
        typed_metronome_call(
            f"set billable status of {customer_id}",
            lambda: self._client.post(
                "/v1/customers/setBillableStatus",
                cast_to=object,
                body={
                    "customer_id": customer_id,
                    "billable_status": status,
                    "effective_at": effective_at.isoformat().replace("+00:00", "Z"),
                },
                options={"headers": _headers(idempotency_key)},
            ),
        )

    # -- contracts --------------------------------------------------------------------------------------------------
    def contracts(self, customer_id: str) -> list[MetronomeContract]:
        pages = typed_metronome_call(
            f"list contracts of {customer_id}", lambda: self._client.v2.contracts.list(customer_id=customer_id)
        )
        return typed_metronome_call(f"list contracts of {customer_id}", lambda: [_contract(c.to_dict()) for c in pages])

    def contract(self, customer_id: str, contract_id: str, *, with_balances: bool = False) -> MetronomeContract:
        found = typed_metronome_call(
            f"retrieve contract {contract_id}",
            lambda: self._client.v2.contracts.retrieve(
                customer_id=customer_id, contract_id=contract_id, include_balance=with_balances
            ),
        )
        return _contract(found.data.to_dict())

    def edit_contract(
        self, customer_id: str, contract_id: str, edit: dict[str, Any], *, uniqueness_key: str, idempotency_key: str
    ) -> None:
        typed_metronome_call(
            f"edit contract {contract_id}",
            lambda: self._once.v2.contracts.edit(
                customer_id=customer_id,
                contract_id=contract_id,
                uniqueness_key=uniqueness_key,
                extra_headers=_headers(idempotency_key),
                **edit,
            ),
        )

    # -- invoices ---------------------------------------------------------------------------------------------------
    def invoices(self, customer_id: str) -> list[MetronomeInvoice]:
        pages = typed_metronome_call(
            f"list invoices of {customer_id}",
            lambda: self._client.v1.customers.invoices.list(customer_id=customer_id, limit=100),
        )
        return typed_metronome_call(f"list invoices of {customer_id}", lambda: [_invoice(i.to_dict()) for i in pages])

    def create_contract(self, terms: dict[str, Any]) -> str:
        made = typed_metronome_call(
            f"create contract for {terms.get('customer_id')}", lambda: self._once.v1.contracts.create(**terms)
        )
        return str(made.data.id)

    def end_contract(self, customer_id: str, contract_id: str, ending_before: datetime, idempotency_key: str) -> None:
        typed_metronome_call(
            f"end contract {contract_id}",
            lambda: self._client.v1.contracts.update_end_date(
                customer_id=customer_id,
                contract_id=contract_id,
                ending_before=ending_before.isoformat().replace("+00:00", "Z"),
                extra_headers=_headers(idempotency_key),
            ),
        )

    # -- parity reads ------------------------------------------------------------------------------------------------
    def usage_invoices(self, customer_id: str) -> list[MetronomeInvoice]:
        pages = typed_metronome_call(
            f"list invoices of {customer_id}",
            lambda: self._client.v1.customers.invoices.list(
                customer_id=customer_id, type="USAGE", sort="date_asc", limit=100
            ),
        )
        return typed_metronome_call(f"list invoices of {customer_id}", lambda: [_invoice(i.to_dict()) for i in pages])

    def usage_product(self, product_id: str) -> UsageProduct:
        found = typed_metronome_call(
            f"retrieve product {product_id}", lambda: self._client.v1.contracts.products.retrieve(id=product_id)
        ).data
        current = found.current
        return UsageProduct(
            id=found.id,
            name=current.name,
            billable_metric_id=current.billable_metric_id,
            pricing_group_key=tuple(current.pricing_group_key or ()),
        )

    def rated_values(self, rate_card_id: str, product_id: str, at: datetime) -> list[dict[str, str]]:
        pages = typed_metronome_call(
            f"rates of {rate_card_id}",
            lambda: self._client.v1.contracts.rate_cards.rates.list(
                rate_card_id=rate_card_id, at=at, selectors=[{"product_id": product_id}], limit=100
            ),
        )
        return typed_metronome_call(
            f"rates of {rate_card_id}",
            lambda: [dict(r.pricing_group_values or {}) for r in pages if r.product_id == product_id],
        )

    def usage_by_group(
        self, customer_id: str, billable_metric_id: str, group_key: str, start: datetime, end: datetime
    ) -> dict[str, Decimal]:
        pages = typed_metronome_call(
            f"usage of {billable_metric_id} for {customer_id}",
            lambda: self._client.v1.usage.list_with_groups(
                billable_metric_id=billable_metric_id,
                customer_id=customer_id,
                window_size="NONE",
                starting_on=midnight(start, up=False),
                ending_before=midnight(end, up=True),
                group_key=[group_key],
            ),
        )
        found: dict[str, Decimal] = {}
        for row in typed_metronome_call(f"usage of {billable_metric_id} for {customer_id}", lambda: list(pages)):
            if row.group_value is not None and row.value is not None:
                found[str(row.group_value)] = found.get(str(row.group_value), Decimal(0)) + Decimal(str(row.value))
        return found


def midnight(value: datetime, *, up: bool) -> datetime:
    """UTC midnight at or before `value` (or, `up`, at or after it): Metronome's usage queries take whole days."""
    day = value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1) if up and day != value else day


def _invoice_line(item: dict[str, Any]) -> MetronomeInvoiceLine:
    kind = str(item.get("type") or "other").lower()
    if item.get("commit_id") or item.get("applied_commit_or_credit"):
        applied = item.get("applied_commit_or_credit") or {}
        kind = "credit" if str(applied.get("type") or item.get("commit_type") or "").upper() == "CREDIT" else "commit"
    quantity = item.get("quantity")
    return MetronomeInvoiceLine(
        kind=kind if kind in ("usage", "commit", "credit") else "other",
        name=str(item.get("name") or ""),
        total=_cents(item.get("total")),
        product_id=_str_or_none(item.get("product_id")),
        quantity=Decimal(str(quantity)) if quantity is not None else None,
        pricing_group_values={str(k): str(v) for k, v in (item.get("pricing_group_values") or {}).items()},
        commit_id=_str_or_none(item.get("commit_id") or (item.get("applied_commit_or_credit") or {}).get("id")),
    )


def _invoice(data: dict[str, Any]) -> MetronomeInvoice:
    return MetronomeInvoice(
        id=str(data["id"]),
        contract_id=_str_or_none(data.get("contract_id")),
        type=str(data.get("type") or ""),
        status=str(data.get("status") or ""),
        start=_time(data.get("start_timestamp")),
        end=_time(data.get("end_timestamp")),
        total=_cents(data.get("total")),
        billable_status=data.get("billable_status"),
        lines=tuple(_invoice_line(i) for i in data.get("line_items") or []),
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _customer(data: dict[str, Any]) -> MetronomeCustomer:
    status = data.get("current_billable_status") or {}
    return MetronomeCustomer(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        ingest_aliases=tuple(data.get("ingest_aliases") or ()),
        billable_status=status.get("value") if isinstance(status, dict) else None,
    )


def _balance(item: dict[str, Any], kind: str) -> ContractBalance:
    items = (item.get("access_schedule") or {}).get("schedule_items") or []
    invoice = item.get("invoice_schedule")
    return ContractBalance(
        id=str(item["id"]),
        kind=kind,
        name=item.get("name"),
        product_id=str((item.get("product") or {}).get("id") or ""),
        amount=sum(_cents(i.get("amount")) for i in items),
        priority=item.get("priority"),
        starting_at=_time(items[0].get("starting_at")) if items else None,
        ending_before=_time(items[-1].get("ending_before")) if items else None,
        applicable_product_ids=tuple(item.get("applicable_product_ids") or ()),
        specifiers=tuple(item.get("specifiers") or ()),
        invoiced=(not invoice.get("do_not_invoice")) if isinstance(invoice, dict) else None,
        balance=_cents(item["balance"]) if item.get("balance") is not None else None,
        access_item_ids=tuple(str(i["id"]) for i in items if i.get("id")),
    )


def _contract(data: dict[str, Any]) -> MetronomeContract:
    provider = data.get("customer_billing_provider_configuration") or {}
    balances = [_balance(c, str(c.get("type"))) for c in data.get("commits") or []]
    balances += [_balance(c, "CREDIT") for c in data.get("credits") or []]
    started = _time(data["starting_at"])
    assert started is not None
    return MetronomeContract(
        id=str(data["id"]),
        customer_id=str(data["customer_id"]),
        uniqueness_key=data.get("uniqueness_key"),
        starting_at=started,
        rate_card_id=data.get("rate_card_id"),
        statement_schedule=dict(data.get("usage_statement_schedule") or {}),
        billing_provider_configuration_id=provider.get("id") if isinstance(provider, dict) else None,
        balances=tuple(balances),
        auto_recharge_enabled=_enabled(data.get("prepaid_balance_threshold_configuration")),
        ending_before=_time(data.get("ending_before")),
    )


def _enabled(configuration: Any) -> bool | None:
    return bool(configuration.get("is_enabled")) if isinstance(configuration, dict) else None
