"""The port to Metronome the migration writes through, and Metronome's objects as it reads them back.

Plain frozen values, money in integer cents; the adapter (`billmig.adapters.metronome_sdk`) is the only place that
knows the SDK. Creates that Metronome deduplicates by `uniqueness_key` or ingest alias raise
`MetronomeAlreadyExists` on a 409, and the caller resolves it by a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class MetronomeCustomer:
    id: str
    name: str
    ingest_aliases: tuple[str, ...]
    billable_status: str | None


@dataclass(frozen=True)
class BillingProviderConfiguration:
    id: str
    billing_provider: str
    delivery_method: str
    stripe_customer_id: str | None
    archived: bool = False


@dataclass(frozen=True)
class ContractBalance:
    """A commit or credit of a contract: `amount` is its access schedule's total (what it grants)."""

    id: str
    kind: str  # PREPAID, POSTPAID or CREDIT
    name: str | None
    product_id: str
    amount: int
    priority: float | None
    starting_at: datetime | None
    ending_before: datetime | None
    applicable_product_ids: tuple[str, ...] = ()
    specifiers: tuple[dict[str, Any], ...] = ()
    invoiced: bool | None = None  # PREPAID only: whether its invoice schedule issues invoices
    balance: int | None = None  # what is left of it now, when read with balances
    access_item_ids: tuple[str, ...] = ()  # its access schedule's items, in order (an edit names the one it changes)


@dataclass(frozen=True)
class MetronomeContract:
    id: str
    customer_id: str
    uniqueness_key: str | None
    starting_at: datetime
    rate_card_id: str | None
    statement_schedule: dict[str, Any]
    billing_provider_configuration_id: str | None
    balances: tuple[ContractBalance, ...] = field(default_factory=tuple)
    ending_before: datetime | None = None
    auto_recharge_enabled: bool | None = None  # None: no prepaid balance threshold configuration


@dataclass(frozen=True)
class MetronomeInvoiceLine:
    """A usage line (`product_id`, `pricing_group_values`) or an applied commit/credit (`commit_id`, negative)."""

    kind: str  # usage | commit | credit | other
    name: str
    total: int
    product_id: str | None = None
    quantity: Decimal | None = None
    pricing_group_values: dict[str, str] = field(default_factory=dict)
    commit_id: str | None = None


@dataclass(frozen=True)
class MetronomeInvoice:
    """An invoice as parity and the credit check read it: its period, its lines, what each commit or credit paid."""

    id: str
    type: str  # USAGE | SCHEDULED
    status: str  # DRAFT | FINALIZED | VOID
    start: datetime | None
    end: datetime | None
    total: int
    contract_id: str | None = None
    billable_status: str | None = None
    lines: tuple[MetronomeInvoiceLine, ...] = ()

    @property
    def drawn(self) -> dict[str, int]:
        """Cents drawn from each commit or credit (by its id) on this invoice."""
        drawn: dict[str, int] = {}
        for line in self.lines:
            if line.kind in ("commit", "credit") and line.commit_id:
                drawn[line.commit_id] = drawn.get(line.commit_id, 0) - line.total
        return drawn


@dataclass(frozen=True)
class MetronomeProduct:
    id: str
    name: str
    type: str


class MetronomeTarget(Protocol):
    # -- catalogue (to resolve a config's names)
    def rate_cards(self) -> dict[str, str]:
        """Rate card name -> id."""
        ...

    def products(self) -> list[MetronomeProduct]: ...

    # -- customers
    def customer_by_alias(self, alias: str) -> MetronomeCustomer | None: ...

    def customer(self, customer_id: str) -> MetronomeCustomer: ...

    def create_customer(
        self, *, name: str, alias: str, stripe_customer_id: str, idempotency_key: str
    ) -> MetronomeCustomer:
        """With the Stripe billing provider configuration. A taken alias raises `MetronomeAlreadyExists`."""
        ...

    def billing_configurations(self, customer_id: str) -> list[BillingProviderConfiguration]: ...

    def add_stripe_configuration(self, customer_id: str, stripe_customer_id: str, idempotency_key: str) -> str: ...

    def set_billable_status(
        self, customer_id: str, status: str, effective_at: datetime, idempotency_key: str
    ) -> None: ...

    # -- contracts
    def contracts(self, customer_id: str) -> list[MetronomeContract]: ...

    def contract(self, customer_id: str, contract_id: str, *, with_balances: bool = False) -> MetronomeContract: ...

    def create_contract(self, terms: dict[str, Any]) -> str:
        """`terms` are `v1.contracts.create`'s parameters; a used `uniqueness_key` raises `MetronomeAlreadyExists`."""
        ...

    def edit_contract(
        self, customer_id: str, contract_id: str, edit: dict[str, Any], *, uniqueness_key: str, idempotency_key: str
    ) -> None:
        """`v2.contracts.edit` with `edit`'s fields (add_commits, add_prepaid_balance_threshold_configuration...); a
        used `uniqueness_key` raises `MetronomeAlreadyExists`."""
        ...

    def end_contract(self, customer_id: str, contract_id: str, ending_before: datetime, idempotency_key: str) -> None:
        """`/v1/contracts/updateEndDate`: Metronome truncates the contract's draft statements at `ending_before`."""
        ...

    # -- invoices
    def invoices(self, customer_id: str) -> list[MetronomeInvoice]: ...


WRITE_METHODS = (
    "create_customer",
    "add_stripe_configuration",
    "set_billable_status",
    "create_contract",
    "edit_contract",
    "end_contract",
)
"""Every `MetronomeTarget` method that writes: the crash points the resume tests enumerate (a test checks this list
against the protocol, so a new write cannot be missed)."""
