"""The migration config: what Stripe maps onto in Metronome, when the parallel run starts and ends, how fast to go.

Read from JSON or YAML and validated by pydantic before anything talks to a vendor; every problem is reported at
once, naming the file and the key (`prices.3.metronome_product`). Metronome objects may be named by id or by name;
`billmig.metronome.resolution` turns names into ids against the account, so a typo fails before any write too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from billmig.metronome.errors import InvalidMigrationConfig

MIN_THRESHOLD = 500  # Metronome: auto-recharge threshold >= $5
MIN_RECHARGE_GAP = 1000  # Metronome: recharge-to >= threshold + $10
DEFAULT_CUTOVER_LEAD_HOURS = 24  # a day before the boundary: retries and a late parity run still fit in the period
MAX_CUTOVER_LEAD_HOURS = 24 * 7  # never so early that the period being decided on is far from closed


class PriceMapping(BaseModel):
    """One Stripe price (id or lookup key) and the Metronome product (id or name) its usage is billed on."""

    model_config = ConfigDict(extra="forbid")

    stripe_price: str = Field(min_length=1)
    metronome_product: str | None = Field(default=None, min_length=1)
    pricing_group_values: dict[str, str] = Field(default_factory=dict)
    not_migrated: str | None = Field(
        default=None,
        min_length=1,
        description="Why this price has no Metronome product (e.g. a licensed fee billed elsewhere); "
        "a customer on it still migrates, without it.",
    )

    @model_validator(mode="after")
    def _product_or_reason(self) -> PriceMapping:
        if (self.metronome_product is None) == (self.not_migrated is None):
            raise ValueError("give either metronome_product or not_migrated (the reason it has none)")
        return self


class AutoRecharge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold_amount: int = Field(ge=MIN_THRESHOLD, description="cents")
    recharge_to_amount: int = Field(description="cents")

    @model_validator(mode="after")
    def _gap(self) -> AutoRecharge:
        if self.recharge_to_amount < self.threshold_amount + MIN_RECHARGE_GAP:
            raise ValueError(
                f"recharge_to_amount must be at least threshold_amount + {MIN_RECHARGE_GAP} cents (Metronome's rule)"
            )
        return self


class ParityTolerances(BaseModel):
    """How far Metronome's invoice may be from Stripe's and still pass parity: a line or an invoice passes when its
    difference is within the absolute cents OR the relative percent (of Stripe's amount). Defaults: Metronome's
    migration guidance (under 1% of the invoice total, sub-cent rounding expected) and 0.5% per line."""

    model_config = ConfigDict(extra="forbid")

    line_cents: int = Field(default=1, ge=0, description="absolute tolerance per line, cents")
    line_percent: float = Field(default=0.5, ge=0, le=100, description="relative tolerance per line, percent")
    invoice_cents: int = Field(default=1, ge=0, description="absolute tolerance per invoice total, cents")
    invoice_percent: float = Field(default=1.0, ge=0, le=100, description="relative tolerance per invoice, percent")
    exclude_prices: dict[str, str] = Field(
        default_factory=dict,
        description="Stripe price (id or lookup key) -> why it is left out of parity; reported as excluded",
    )

    def line_within(self, stripe_cents: int, metronome_cents: int) -> bool:
        return _within(stripe_cents, metronome_cents, self.line_cents, self.line_percent)

    def invoice_within(self, stripe_cents: int, metronome_cents: int) -> bool:
        return _within(stripe_cents, metronome_cents, self.invoice_cents, self.invoice_percent)


def _within(expected: int, actual: int, cents: int, percent: float) -> bool:
    difference = abs(actual - expected)
    return difference <= cents or difference * 100 <= abs(expected) * percent


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("must be a UTC time (ending in Z or +00:00)")
    return value.astimezone(UTC)


def month_boundary(value: datetime) -> datetime:
    value = _utc(value)
    if (value.day, value.hour, value.minute, value.second, value.microsecond) != (1, 0, 0, 0, 0):
        raise ValueError(f"{value.isoformat()} is not a UTC month boundary (the 1st at 00:00:00Z)")
    return value


class MigrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    migration_id: str = Field(default="billmig", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
    rate_card: str = Field(min_length=1, description="Metronome rate card id or name")
    internal_id_metadata_key: str = Field(min_length=1, description="Stripe customer metadata key: the ingest alias")
    commit_product: str = Field(min_length=1, description="FIXED product (id or name) for paid grants")
    credit_product: str = Field(min_length=1, description="FIXED product (id or name) for promotional grants")
    prices: list[PriceMapping] = Field(min_length=1)
    parallel_run_start: datetime
    cutover_at: datetime
    strategy: Literal["parallel", "hard"] = "parallel"
    cutover_lead_hours: int = Field(
        default=DEFAULT_CUTOVER_LEAD_HOURS,
        ge=1,
        le=MAX_CUTOVER_LEAD_HOURS,
        description="How long before a customer's period boundary its cutover is decided: Stripe's end at period "
        "end and Metronome's billable status are set then, while the period is still open.",
    )
    stripe_end: Literal["cancel_at_period_end", "subscription_schedule"] = Field(
        default="cancel_at_period_end",
        description="How the Stripe subscription is ended at its period end: the flag, or a subscription schedule "
        "whose end_behavior is cancel.",
    )
    auto_recharge: AutoRecharge
    concurrency: int = Field(default=10, ge=1, le=1000)
    parity: ParityTolerances = Field(default_factory=ParityTolerances)

    @field_validator("parallel_run_start")
    @classmethod
    def _month_boundary(cls, value: datetime) -> datetime:
        return month_boundary(value)

    @field_validator("cutover_at")
    @classmethod
    def _cutover_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("prices")
    @classmethod
    def _unique_prices(cls, value: list[PriceMapping]) -> list[PriceMapping]:
        seen: set[str] = set()
        for index, mapping in enumerate(value):
            if mapping.stripe_price in seen:
                raise ValueError(f"{index}: {mapping.stripe_price!r} is mapped twice")
            seen.add(mapping.stripe_price)
        return value

    @model_validator(mode="after")
    def _cutover_after_start(self) -> MigrationConfig:
        if self.cutover_at <= self.parallel_run_start:
            raise ValueError("cutover_at must be after parallel_run_start")
        return self

    def mapping_for(self, price_id: str, lookup_key: str | None) -> PriceMapping | None:
        for mapping in self.prices:
            if mapping.stripe_price == price_id or (lookup_key is not None and mapping.stripe_price == lookup_key):
                return mapping
        return None


def problems_of(exc: ValidationError, source: str) -> list[str]:
    found = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "<top level>"
        message = str(error["msg"]).removeprefix("Value error, ")
        found.append(f"{source}: {key}: {message}")
    return found


def parse_config(raw: Any, source: str, overrides: dict[str, Any] | None = None) -> MigrationConfig:
    """`overrides` (the CLI's --parallel-run-start, --cutover-at, --strategy) replace the file's keys."""
    if not isinstance(raw, dict):
        raise InvalidMigrationConfig([f"{source}: expected a mapping of keys, got {type(raw).__name__}"])
    merged = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        return MigrationConfig.model_validate(merged)
    except ValidationError as exc:
        raise InvalidMigrationConfig(problems_of(exc, source)) from exc


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> MigrationConfig:
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise InvalidMigrationConfig([f"{path}: no such file"]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidMigrationConfig([f"{path}: not UTF-8 text ({exc})"]) from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # the CLI reads YAML; the Lambdas get the resolved config as JSON

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidMigrationConfig([f"{path}: not YAML: {exc}"]) from exc
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidMigrationConfig(
                [f"{path}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]
            ) from exc
    return parse_config(raw, str(path), overrides)
