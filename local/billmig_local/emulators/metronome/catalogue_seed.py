"""The shared catalogue (`billmig_local.catalogue`) as Metronome objects, created through `metronome-sdk`.

Per metered offering: a billable metric (event type = the metric, aggregation from the Stripe meter's, grouped by the
pricing-group key), a USAGE product on that metric, and one rate per pricing-group value on the standard rate card
(per unit -> FLAT, graduated tiers -> TIERED). `UNRATED_REGION` gets no rate on purpose. Plus the two FIXED products
that migrated credit grants become commits and credits of.

Licensed plans are left out: rate cards price usage, composite and subscription products only (a FIXED product's
price is set on the contract), and a monthly fee would be a contract's `subscriptions` (SUBSCRIPTION product and
rate) or `scheduled_charges`, neither of which this emulator bills.

Idempotent: every object is looked up by name (rates by product and pricing-group values) before it is created, so
a rerun returns the same ids and creates nothing; one found with another meaning raises `CatalogueConflict`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from metronome import Metronome, omit

from billmig_local.catalogue import STANDARD, Catalogue, MeteredOffering, Rate, Tier

RATES_START = datetime(2020, 1, 1, tzinfo=UTC)
"""Every seeded rate is in effect from here (UTC midnight, before any contract the migration writes)."""

_AGGREGATIONS: dict[str, Literal["COUNT", "SUM", "LATEST"]] = {"count": "COUNT", "sum": "SUM", "last": "LATEST"}


@dataclass
class SeededCatalogue:
    """The Metronome ids the migration needs, keyed like the shared catalogue; `created` lists what this run made."""

    rate_card_id: str = ""
    rate_card_name: str = ""
    billable_metric_ids: dict[str, str] = field(default_factory=dict)  # offering key -> id
    usage_product_ids: dict[str, str] = field(default_factory=dict)  # offering key -> id
    prepaid_commit_product_id: str = ""
    promotional_credit_product_id: str = ""
    rates: list[dict[str, Any]] = field(default_factory=list)  # {offering, pricing_group_values, rate_type}
    created: list[str] = field(default_factory=list)

    def ids(self) -> dict[str, Any]:
        """What `metronome-catalogue.json` holds: the ids only, not this run's bookkeeping."""
        data = asdict(self)
        del data["created"]
        return data


def metronome_tiers(tiers: Iterable[Tier]) -> list[dict[str, int]]:
    """Stripe graduated tiers (cumulative `up_to`) -> Metronome tiers (`size` of each tier, the last open-ended)."""
    result: list[dict[str, int]] = []
    below = 0
    for tier in tiers:
        if tier.flat_amount:
            raise ValueError("Metronome tiers have no flat fee per tier; the catalogue tier cannot be translated")
        if tier.up_to is None:
            result.append({"price": tier.unit_amount})
            break
        result.append({"size": tier.up_to - below, "price": tier.unit_amount})
        below = tier.up_to
    return result


def rate_spec(rate: Rate) -> dict[str, Any]:
    """The `rate_type` and price fields of one catalogue rate."""
    if rate.tiers:
        return {"rate_type": "TIERED", "tiers": metronome_tiers(rate.tiers)}
    return {"rate_type": "FLAT", "price": rate.unit_amount}


class CatalogueConflict(Exception):
    """An object of the catalogue's name exists but means something else: reusing it would misprice usage."""


def seed_catalogue(client: Metronome, catalogue: Catalogue = STANDARD) -> SeededCatalogue:
    """Create (or find, and check) every Metronome object of `catalogue`; returns their ids."""
    seeded = SeededCatalogue(rate_card_name=catalogue.rate_card_name)
    metrics = {m.name: m for m in client.v1.billable_metrics.list()}
    products = {(p.current.name, p.type): p for p in client.v1.contracts.products.list()}
    cards = {c.name: c.id for c in client.v1.contracts.rate_cards.list()}

    def product(name: str, kind: Literal["USAGE", "FIXED"], metric_id: str | None, group_key: str | None) -> str:
        found = products.get((name, kind))
        if found is None:
            extra: dict[str, Any] = {"billable_metric_id": metric_id} if metric_id else {}
            if group_key:
                extra["pricing_group_key"] = [group_key]
            seeded.created.append(f"product {name}")
            return client.v1.contracts.products.create(name=name, type=kind, **extra).data.id
        have = (found.current.billable_metric_id, found.current.pricing_group_key or None)
        want = (metric_id, [group_key] if group_key else None)
        if have != want:
            raise CatalogueConflict(f"product {name!r} ({found.id}) has metric and pricing group {have}, not {want}")
        return found.id

    if catalogue.rate_card_name not in cards:
        cards[catalogue.rate_card_name] = client.v1.contracts.rate_cards.create(
            name=catalogue.rate_card_name, description="Standard list prices (billmig local seed)"
        ).data.id
        seeded.created.append(f"rate card {catalogue.rate_card_name}")
    seeded.rate_card_id = cards[catalogue.rate_card_name]

    for offering in catalogue.metered:
        spec = _metric_spec(offering)
        metric = metrics.get(offering.metric)
        if metric is None:
            metric_id = client.v1.billable_metrics.create(**spec).data.id
            seeded.created.append(f"billable metric {offering.metric}")
        else:
            have = (metric.aggregation_type, metric.aggregation_key, metric.group_keys or None)
            want = (spec["aggregation_type"], spec.get("aggregation_key"), spec.get("group_keys"))
            if have != want:
                raise CatalogueConflict(f"billable metric {offering.metric!r} ({metric.id}) is {have}, not {want}")
            metric_id = metric.id
        seeded.billable_metric_ids[offering.key] = metric_id
        product_id = product(offering.name, "USAGE", metric_id, offering.pricing_group_key)
        seeded.usage_product_ids[offering.key] = product_id
        _seed_rates(client, seeded, offering, product_id)

    credit_products = catalogue.credit_products
    seeded.prepaid_commit_product_id = product(credit_products.prepaid_commit, "FIXED", None, None)
    seeded.promotional_credit_product_id = product(credit_products.promotional_credit, "FIXED", None, None)
    return seeded


def _metric_spec(offering: MeteredOffering) -> dict[str, Any]:
    aggregation = _AGGREGATIONS[offering.aggregation]
    spec: dict[str, Any] = {
        "name": offering.metric,
        "event_type_filter": {"in_values": [offering.metric]},
        "aggregation_type": aggregation,
    }
    if aggregation != "COUNT":
        # Metronome: the aggregation key must be one of the property filters
        spec["aggregation_key"] = offering.value_property
        spec["property_filters"] = [{"name": offering.value_property, "exists": True}]
    if offering.pricing_group_key:
        spec["group_keys"] = [[offering.pricing_group_key]]
    return spec


def _seed_rates(client: Metronome, seeded: SeededCatalogue, offering: MeteredOffering, product_id: str) -> None:
    existing = client.v1.contracts.rate_cards.rates.list(
        rate_card_id=seeded.rate_card_id, at=RATES_START, selectors=[{"product_id": product_id}]
    )
    have = {json.dumps(r.pricing_group_values or {}, sort_keys=True): r.rate for r in existing}
    for rate in offering.rates:
        values = (
            {offering.pricing_group_key: rate.pricing_group_value}
            if offering.pricing_group_key and rate.pricing_group_value is not None
            else {}
        )
        spec = rate_spec(rate)
        seeded.rates.append({"offering": offering.key, "pricing_group_values": values, "rate_type": spec["rate_type"]})
        found = have.get(json.dumps(values, sort_keys=True))
        if found is not None:
            tiers = [t.model_dump(exclude_none=True) for t in found.tiers or []] or None
            if (found.rate_type, found.price, tiers) != (spec["rate_type"], spec.get("price"), spec.get("tiers")):
                raise CatalogueConflict(f"the {offering.key} rate at {values or 'no group'} differs from the catalogue")
            continue
        if rate.tiers:
            client.v1.contracts.rate_cards.rates.add(
                rate_card_id=seeded.rate_card_id,
                product_id=product_id,
                starting_at=RATES_START,
                entitled=True,
                rate_type="TIERED",
                tiers=spec["tiers"],
                pricing_group_values=values or omit,
            )
        else:
            client.v1.contracts.rate_cards.rates.add(
                rate_card_id=seeded.rate_card_id,
                product_id=product_id,
                starting_at=RATES_START,
                entitled=True,
                rate_type="FLAT",
                price=spec["price"],
                pricing_group_values=values or omit,
            )
        seeded.created.append(f"rate {offering.key} {values or ''}".rstrip())
