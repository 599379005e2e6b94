"""A config's names turned into ids against the accounts, before anything is written.

The CLI resolves the config once (rate card, products and Stripe prices must all exist, commit and credit products
must be FIXED) and stores the result beside the batch in S3; every Lambda reads that one document, so a run never
sees a name resolved two ways.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billmig.metronome.config import DEFAULT_CUTOVER_LEAD_HOURS, AutoRecharge, MigrationConfig, ParityTolerances
from billmig.metronome.errors import InvalidMigrationConfig
from billmig.metronome.ports import MetronomeProduct, MetronomeTarget
from billmig.stripe_source.port import StripeSource


class ResolvedPrice(BaseModel):
    stripe_price: str
    product_id: str | None
    pricing_group_values: dict[str, str] = Field(default_factory=dict)
    not_migrated: str | None = None


class ResolvedConfig(BaseModel):
    migration_id: str
    rate_card_id: str
    internal_id_metadata_key: str
    commit_product_id: str
    credit_product_id: str
    prices: list[ResolvedPrice]
    parallel_run_start: datetime
    cutover_at: datetime
    strategy: Literal["parallel", "hard"]
    auto_recharge: AutoRecharge
    cutover_lead_hours: int = DEFAULT_CUTOVER_LEAD_HOURS
    stripe_end: Literal["cancel_at_period_end", "subscription_schedule"] = "cancel_at_period_end"
    concurrency: int
    parity: ParityTolerances = Field(default_factory=ParityTolerances)

    def mapping_for(self, price_id: str, lookup_key: str | None) -> ResolvedPrice | None:
        for mapping in self.prices:
            if mapping.stripe_price == price_id or (lookup_key is not None and mapping.stripe_price == lookup_key):
                return mapping
        return None


def _product(
    products: list[MetronomeProduct], wanted: str, key: str, source: str, kind: str | None, problems: list[str]
) -> str:
    matches = [p for p in products if wanted in (p.id, p.name)]
    if not matches:
        problems.append(f"{source}: {key}: no Metronome product {wanted!r}")
        return ""
    if len(matches) > 1:
        problems.append(f"{source}: {key}: {len(matches)} Metronome products are named {wanted!r}; give its id")
        return ""
    if kind is not None and matches[0].type != kind:
        problems.append(f"{source}: {key}: product {wanted!r} is {matches[0].type}; commits and credits need {kind}")
    return matches[0].id


def resolve(config: MigrationConfig, metronome: MetronomeTarget, stripe: StripeSource, source: str) -> ResolvedConfig:
    problems: list[str] = []
    cards = metronome.rate_cards()
    if config.rate_card in cards.values():
        rate_card_id = config.rate_card
    elif config.rate_card in cards:
        rate_card_id = cards[config.rate_card]
    else:
        rate_card_id = ""
        problems.append(f"{source}: rate_card: no Metronome rate card {config.rate_card!r} (known: {sorted(cards)})")
    products = metronome.products()
    commit = _product(products, config.commit_product, "commit_product", source, "FIXED", problems)
    credit = _product(products, config.credit_product, "credit_product", source, "FIXED", problems)
    stripe_prices = stripe.price_keys()
    prices = []
    for index, mapping in enumerate(config.prices):
        if mapping.stripe_price not in stripe_prices:
            problems.append(f"{source}: prices.{index}.stripe_price: no Stripe price {mapping.stripe_price!r}")
        product_id = None
        if mapping.metronome_product is not None:
            product_id = _product(
                products, mapping.metronome_product, f"prices.{index}.metronome_product", source, None, problems
            )
        prices.append(
            ResolvedPrice(
                stripe_price=mapping.stripe_price,
                product_id=product_id,
                pricing_group_values=mapping.pricing_group_values,
                not_migrated=mapping.not_migrated,
            )
        )
    if problems:
        raise InvalidMigrationConfig(problems)
    return ResolvedConfig(
        migration_id=config.migration_id,
        rate_card_id=rate_card_id,
        internal_id_metadata_key=config.internal_id_metadata_key,
        commit_product_id=commit,
        credit_product_id=credit,
        prices=prices,
        parallel_run_start=config.parallel_run_start,
        cutover_at=config.cutover_at,
        strategy=config.strategy,
        auto_recharge=config.auto_recharge,
        cutover_lead_hours=config.cutover_lead_hours,
        stripe_end=config.stripe_end,
        concurrency=config.concurrency,
        parity=config.parity,
    )
