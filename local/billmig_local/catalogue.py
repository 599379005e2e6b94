"""The one product catalogue the local seeds of Stripe, Metronome and Stigg are built from.

Each seed translates these entries into its own vendor's objects, so one month of the same usage prices the same in
Stripe and in Metronome, and the Stigg plans and features line up with the Stripe prices a `--from-stripe` import
maps. Data only: no SDK, no HTTP. Money is integer cents (USD).

Usage reaches both billing systems as the same logical event:

- Stripe: one meter per (metric, pricing-group value) because Stripe meters cannot split by a property; the event
  name is `MeteredOffering.stripe_event_name(value)`, payload `{stripe_customer_id, value}`.
- Metronome: one billable metric per metric with `group_keys = [pricing_group_key]`, one USAGE product with that
  `pricing_group_key`, and one rate per pricing-group value on the standard rate card. The event is
  `{event_type: metric, customer_id: <ingest alias>, properties: {<value_property>: n, <pricing_group_key>: value}}`.

A pricing-group value that has no rate (the `UNRATED_REGION` the Stripe seed sends for one awkward customer) is the
"common mistake" of the migration guide: usage in Metronome, no charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Aggregation = Literal["sum", "count", "last"]


@dataclass(frozen=True)
class Tier:
    """A graduated tier: `up_to` units (None = the rest) at `unit_amount` cents each plus `flat_amount` once."""

    up_to: int | None
    unit_amount: int
    flat_amount: int = 0


@dataclass(frozen=True)
class Rate:
    """The price of one pricing-group value: per unit (`unit_amount`) or graduated `tiers`, never both."""

    pricing_group_value: str | None
    unit_amount: int | None = None
    tiers: tuple[Tier, ...] = ()

    def __post_init__(self) -> None:
        if (self.unit_amount is None) == (not self.tiers):
            raise ValueError("a rate is either per unit or tiered")


@dataclass(frozen=True)
class MeteredOffering:
    """A usage metric priced per unit or in graduated tiers, possibly split by one pricing-group key."""

    key: str  # stable id used in lookup keys, names and the Stigg feature id
    name: str
    metric: str  # the Metronome event_type and billable metric name
    aggregation: Aggregation
    value_property: str  # the event property holding the quantity (ignored for count)
    rates: tuple[Rate, ...]
    pricing_group_key: str | None = None
    stigg_feature_id: str = ""
    stigg_unit: str = "unit"

    def stripe_event_name(self, pricing_group_value: str | None) -> str:
        return self.metric if pricing_group_value is None else f"{self.metric}.{pricing_group_value}"

    def stripe_lookup_key(self, pricing_group_value: str | None) -> str:
        return self.key if pricing_group_value is None else f"{self.key}_{pricing_group_value.replace('-', '_')}"


@dataclass(frozen=True)
class LicensedPlan:
    """A flat monthly fee billed in advance (Stripe licensed price); a paid plan in Stigg."""

    key: str
    name: str
    monthly_amount: int
    stigg_plan_id: str
    included_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class StiggCatalogue:
    """Stigg's side: one product, its plans, add-ons and features (ids are Stigg refIds)."""

    product_id: str = "product-platform"
    free_plan_id: str = "plan-free"
    paid_plan_ids: tuple[str, ...] = ("plan-growth",)
    custom_plan_id: str = "plan-enterprise"
    boolean_feature_ids: tuple[str, ...] = ("feature-sso",)
    configurable_feature_ids: tuple[str, ...] = ("feature-seats",)
    events_metered_feature_ids: tuple[str, ...] = ("feature-audit-log-events",)
    addon_ids: tuple[str, ...] = ("addon-extra-seats", "addon-priority-support")


@dataclass(frozen=True)
class CreditProducts:
    """The FIXED Metronome products that migrated Stripe credit grants become commits and credits of."""

    prepaid_commit: str = "Prepaid commit (migrated Stripe paid credit)"
    promotional_credit: str = "Promotional credit (migrated Stripe promotional credit)"


@dataclass(frozen=True)
class Catalogue:
    metered: tuple[MeteredOffering, ...]
    plans: tuple[LicensedPlan, ...]
    rate_card_name: str = "Standard"
    stigg: StiggCatalogue = field(default_factory=StiggCatalogue)
    credit_products: CreditProducts = field(default_factory=CreditProducts)
    currency: str = "usd"

    def offering(self, key: str) -> MeteredOffering:
        for offering in self.metered:
            if offering.key == key:
                return offering
        raise KeyError(key)


UNRATED_REGION = "ap-south"  # sent by one awkward seeded customer; the Metronome rate card has no rate for it

STANDARD = Catalogue(
    metered=(
        MeteredOffering(
            key="api_calls",
            name="API calls",
            metric="api_call",
            aggregation="count",
            value_property="value",
            rates=(
                Rate(
                    None,
                    tiers=(Tier(up_to=1_000, unit_amount=0), Tier(up_to=10_000, unit_amount=2), Tier(None, 1)),
                ),
            ),
            stigg_feature_id="feature-api-calls",
            stigg_unit="call",
        ),
        MeteredOffering(
            key="compute_minutes",
            name="Compute minutes",
            metric="compute_minutes",
            aggregation="sum",
            value_property="minutes",
            rates=(Rate(None, unit_amount=3),),
            stigg_feature_id="feature-compute-minutes",
            stigg_unit="minute",
        ),
        MeteredOffering(
            key="storage_gb",
            name="Storage (GB-months)",
            metric="storage_gb",
            aggregation="last",
            value_property="gb",
            pricing_group_key="region",
            rates=(Rate("us-east", unit_amount=20), Rate("eu-west", unit_amount=25)),
            stigg_feature_id="feature-storage-gb",
            stigg_unit="GB",
        ),
    ),
    plans=(
        LicensedPlan(
            key="growth_monthly",
            name="Growth plan",
            monthly_amount=9_900,
            stigg_plan_id="plan-growth",
            included_features=("feature-sso", "feature-seats"),
        ),
    ),
)
