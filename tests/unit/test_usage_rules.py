"""Which router rule an event gets: the most specific rule whose name and property values match, else none."""

from __future__ import annotations

from datetime import UTC, datetime

from billmig.usage.events import UsageEvent
from billmig.usage.mapping import UsageRouterConfig


def rule(event_name: str, stripe_event_name: str, match: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "event_name": event_name,
        "match": match or {},
        "stripe_event_name": stripe_event_name,
        "metronome_event_type": event_name,
        "metronome_billable_metric": event_name,
    }


CONFIG = UsageRouterConfig.model_validate(
    {
        "internal_id_metadata_key": "internal_customer_id",
        "rules": [
            rule("storage_gb", "storage_gb.any"),
            rule("storage_gb", "storage_gb.us-east.hot", {"region": "us-east", "tier": "hot"}),
            rule("storage_gb", "storage_gb.us-east", {"region": "us-east"}),
            rule("api_call", "api_call"),
        ],
    }
)


def event(name: str, **properties: str) -> UsageEvent:
    return UsageEvent(
        event_id="e1",
        customer_id="c1",
        event_name=name,
        timestamp=datetime(2027, 1, 5, tzinfo=UTC),
        properties=properties,
    )


def chosen(found: UsageEvent) -> str | None:
    match = CONFIG.rule_for(found)
    return match.stripe_event_name if match else None


def test_the_most_specific_matching_rule_wins_whatever_the_order_of_the_rules() -> None:
    assert chosen(event("storage_gb", region="us-east", tier="hot")) == "storage_gb.us-east.hot"
    assert chosen(event("storage_gb", region="us-east", tier="cold")) == "storage_gb.us-east"
    assert chosen(event("storage_gb", region="eu-west")) == "storage_gb.any"
    assert chosen(event("api_call", region="us-east")) == "api_call"


def test_an_event_no_rule_names_has_no_rule() -> None:
    assert chosen(event("compute_minutes")) is None
    assert chosen(event("Storage_GB", region="us-east")) is None
