"""What parity reads from each vendor (never writes): invoices on both sides, Stripe's preview and credit ledger,
Metronome's rate card rates and usage groups (`events/search` takes transaction ids only and is a sampling tool, so
the pricing-group evidence comes from `usage/groups` and the rates, as metronome.md's diagnosis lists them).

Plain frozen values, money in integer cents; the adapters (`billmig.adapters.stripe_sdk`,
`billmig.adapters.metronome_sdk`) are the only places that know the SDKs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from billmig.metronome.ports import MetronomeContract, MetronomeCustomer, MetronomeInvoice
from billmig.stripe_source.port import StripeSource
from billmig.stripe_source.views import StripeInvoice


@dataclass(frozen=True)
class UsageProduct:
    id: str
    name: str
    billable_metric_id: str | None
    pricing_group_key: tuple[str, ...] = ()


class StripeParityReads(StripeSource, Protocol):
    def invoice_preview(self, customer_id: str, subscription_id: str) -> StripeInvoice | None:
        """The subscription's next cycle invoice as it stands (`Invoice.create_preview`); None when it has none."""
        ...

    def credit_grants_of_transactions(self, customer_id: str) -> dict[str, str]:
        """Credit balance transaction id -> the credit grant it drew on, for the customer."""
        ...


class MetronomeParityReads(Protocol):
    def customer_by_alias(self, alias: str) -> MetronomeCustomer | None: ...

    def contracts(self, customer_id: str) -> list[MetronomeContract]: ...

    def usage_invoices(self, customer_id: str) -> list[MetronomeInvoice]:
        """Every USAGE invoice of the customer, drafts included, oldest first."""
        ...

    def usage_product(self, product_id: str) -> UsageProduct: ...

    def rated_values(self, rate_card_id: str, product_id: str, at: datetime) -> list[dict[str, str]]:
        """The pricing-group values that have a rate on the rate card at `at` ({} = a rate for every value)."""
        ...

    def usage_by_group(
        self, customer_id: str, billable_metric_id: str, group_key: str, start: datetime, end: datetime
    ) -> dict[str, Decimal]:
        """Usage per value of `group_key` over whole days [start, end) (`usage/groups`)."""
        ...
