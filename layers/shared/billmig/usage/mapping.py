"""The router config: which Stripe meter and which Metronome event type each kind of usage event becomes.

A rule picks events by name and, optionally, by property values (`match`), because a Stripe meter cannot split by a
property while a Metronome product can (one Stripe meter per pricing-group value; see `billmig_local.catalogue`).
The most specific matching rule wins. Read from JSON or YAML by the CLI, stored as JSON in SSM for the Lambda.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from billmig.usage.errors import InvalidRouterConfig
from billmig.usage.events import UsageEvent

STRIPE_EVENT_NAME_MAX = 100


class MeterRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_name: str = Field(min_length=1)
    match: dict[str, str] = Field(default_factory=dict, description="property values that select this rule")
    stripe_event_name: str = Field(min_length=1, max_length=STRIPE_EVENT_NAME_MAX)
    stripe_value_property: str | None = Field(
        default=None, description="the event property holding the quantity; none for a count meter (value 1)"
    )
    stripe_customer_key: str = "stripe_customer_id"  # the meter's customer_mapping.event_payload_key
    stripe_value_key: str = "value"  # the meter's value_settings.event_payload_key
    metronome_event_type: str = Field(min_length=1)
    metronome_billable_metric: str = Field(
        min_length=1, description="the billable metric (id or name) counting these events, for the completeness check"
    )

    def matches(self, event: UsageEvent) -> bool:
        return event.event_name == self.event_name and all(
            str(event.properties.get(key)) == value for key, value in self.match.items()
        )


class UsageRouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    internal_id_metadata_key: str = Field(
        min_length=1, description="Stripe customer metadata key holding the internal id (as in the migration config)"
    )
    stripe_transport: Literal["stream", "v1"] = Field(
        default="stream", description="v2 meter event stream (100 per request) or v1 meter events (one per call)"
    )
    late_event_window_hours: int = Field(default=48, ge=0, le=35 * 24)
    route_cache_seconds: int = Field(default=60, ge=0, le=3600)
    rules: list[MeterRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> UsageRouterConfig:
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for index, rule in enumerate(self.rules):
            key = (rule.event_name, tuple(sorted(rule.match.items())))
            if key in seen:
                raise ValueError(f"rules.{index}: {rule.event_name} {rule.match} is mapped twice")
            seen.add(key)
        return self

    _by_name: dict[str, list[MeterRule]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        # Most specific first, so the first match wins; looked up by name, as every event of a batch is.
        for rule in sorted(self.rules, key=lambda rule: -len(rule.match)):
            self._by_name.setdefault(rule.event_name, []).append(rule)

    def rule_for(self, event: UsageEvent) -> MeterRule | None:
        return next((rule for rule in self._by_name.get(event.event_name, ()) if rule.matches(event)), None)


def parse_router_config(raw: Any, source: str) -> UsageRouterConfig:
    if not isinstance(raw, dict):
        raise InvalidRouterConfig([f"{source}: expected a mapping of keys, got {type(raw).__name__}"])
    try:
        return UsageRouterConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "<top level>"
            problems.append(f"{source}: {key}: {str(error['msg']).removeprefix('Value error, ')}")
        raise InvalidRouterConfig(problems) from exc


def router_config_from_json(text: str, source: str) -> UsageRouterConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRouterConfig([f"{source}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]) from exc
    return parse_router_config(raw, source)
