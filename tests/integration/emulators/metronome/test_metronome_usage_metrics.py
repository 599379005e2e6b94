"""Billable metrics through the SDK: property filters, every aggregation, and what ingest accepts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import metronome
import pytest
from metronome_world import World, at, ingest, new_customer


def metric(client: metronome.Metronome, name: str, aggregation: Any, **extra: Any) -> str:
    return client.v1.billable_metrics.create(
        name=name, event_type_filter={"in_values": ["upload"]}, aggregation_type=aggregation, **extra
    ).data.id


def month_value(client: metronome.Metronome, customer: str, metric_id: str) -> float:
    (row,) = client.v1.usage.list_with_groups(
        customer_id=customer, billable_metric_id=metric_id, window_size="NONE", starting_on=at(1), ending_before=at(2)
    )
    return float(row.value or 0)


def test_property_filters_and_every_aggregation(shared_world: World) -> None:
    client = shared_world.client
    customer = new_customer(client, "agg")
    us_only = [{"name": "region", "in_values": ["us"]}, {"name": "bytes", "exists": True}]
    ids = {
        kind: metric(client, f"us {kind}", kind, property_filters=us_only, aggregation_key="bytes")
        for kind in ("SUM", "MAX", "LATEST", "UNIQUE")
    }
    ids["COUNT"] = metric(client, "us count", "COUNT", property_filters=us_only)
    not_us = metric(client, "not us", "COUNT", property_filters=[{"name": "region", "not_in_values": ["us"]}])
    now = shared_world.clock.now_datetime()

    def upload(tid: str, minutes: int, event_type: str = "upload", **properties: Any) -> dict[str, Any]:
        when = (now + timedelta(minutes=minutes)).isoformat()
        return {"customer_id": "agg", "event_type": event_type, "timestamp": when, "transaction_id": tid,
                "properties": properties}  # fmt: skip

    ingest(
        client,
        [
            upload("u1", 1, region="us", bytes=5),
            upload("u2", 3, region="us", bytes="3"),  # numbers may come as strings; this one is the latest
            upload("u3", 2, region="us", bytes=5),
            upload("u4", 2, region="US", bytes=7),  # filters match case-sensitively: not "us"
            upload("u5", 2, region="eu", bytes=100),
            upload("u6", 2, region="us"),  # no bytes: fails `exists`
            upload("u7", 2, "download", region="us", bytes=1),  # another event type: no metric matches
        ],
    )
    values = {kind: month_value(client, customer, metric_id) for kind, metric_id in ids.items()}
    assert values == {"SUM": 13, "MAX": 5, "LATEST": 3, "UNIQUE": 2, "COUNT": 3}
    assert month_value(client, customer, not_us) == 2  # US and eu
    (dropped,) = client.v1.usage.search(transaction_ids=["u7"])
    assert dropped.matched_customer is not None and dropped.matched_customer.id == customer
    assert dropped.matched_billable_metrics == []
    (upper_case,) = client.v1.usage.search(transaction_ids=["u4"])
    assert [m.id for m in upper_case.matched_billable_metrics or []] == [not_us]


def test_aggregation_key_must_be_a_property_filter(shared_world: World) -> None:
    with pytest.raises(metronome.BadRequestError) as error:
        metric(shared_world.client, "bad", "SUM", aggregation_key="bytes")
    assert "aggregation_key" in error.value.body["message"]


def test_ingest_takes_1_to_100_events_and_unknown_customers_match_nothing(shared_world: World) -> None:
    client = shared_world.client
    now = shared_world.clock.now_datetime().isoformat()
    event = {"customer_id": "nobody", "event_type": "upload", "timestamp": now, "properties": {}}
    with pytest.raises(metronome.BadRequestError):
        client.v1.usage.ingest(usage=[{**event, "transaction_id": f"many-{n}"} for n in range(101)])  # type: ignore[misc]
    assert client.v1.usage.search(transaction_ids=["many-0"]) == []  # nothing of a refused batch was kept
    client.v1.usage.ingest(usage=[{**event, "transaction_id": "orphan"}])  # type: ignore[list-item]
    (orphan,) = client.v1.usage.search(transaction_ids=["orphan"])
    assert (orphan.matched_customer, orphan.matched_billable_metrics) == (None, [])


def test_ingest_refuses_events_too_far_ahead_or_behind(shared_world: World) -> None:
    client = shared_world.client
    now = shared_world.clock.now_datetime()

    def event(tid: str, when: Any) -> Any:
        return {"customer_id": "nobody", "event_type": "upload", "timestamp": when.isoformat(), "transaction_id": tid}

    client.v1.usage.ingest(
        usage=[event("edge-ahead", now + timedelta(hours=23)), event("edge-back", now - timedelta(days=33))]
    )
    for tid, when, field in [
        ("ahead", now + timedelta(hours=25), "future"),
        ("behind", now - timedelta(days=35), "past"),
    ]:
        with pytest.raises(metronome.BadRequestError) as error:
            client.v1.usage.ingest(usage=[event(tid, when)])
        assert field in error.value.body["message"]
    assert [e.transaction_id for e in client.v1.usage.search(transaction_ids=["edge-ahead", "edge-back", "ahead"])] == [
        "edge-ahead",
        "edge-back",
    ]


def test_aliases_are_resolved_when_an_event_is_ingested(shared_world: World) -> None:
    client = shared_world.client
    counted = metric(client, "uploads by alias", "COUNT")
    now = shared_world.clock.now_datetime().isoformat()

    def upload(alias: str, tid: str) -> Any:
        return {"customer_id": alias, "event_type": "upload", "timestamp": now, "transaction_id": tid}

    first = new_customer(client, "moving-alias")
    client.v1.usage.ingest(usage=[upload("moving-alias", "ma-1"), upload("later-alias", "ma-early")])
    # the alias moves to another customer: what was ingested stays with the first, what comes next goes to the new
    client.v1.customers.set_ingest_aliases(customer_id=first, ingest_aliases=["moved-away"])
    second = new_customer(client, "moving-alias")
    client.v1.customers.set_ingest_aliases(customer_id=second, ingest_aliases=["moving-alias", "later-alias"])
    client.v1.usage.ingest(usage=[upload("moving-alias", "ma-2"), upload("moving-alias", "ma-3")])
    assert (month_value(client, first, counted), month_value(client, second, counted)) == (1, 2)
    (early,) = client.v1.usage.search(transaction_ids=["ma-1"])
    assert early.matched_customer is not None and early.matched_customer.id == first
    # an alias assigned after the event arrived does not adopt it
    (unmatched,) = client.v1.usage.search(transaction_ids=["ma-early"])
    assert unmatched.matched_customer is None


def test_events_search_reports_duplicates_of_a_transaction_id(shared_world: World) -> None:
    client = shared_world.client
    customer = new_customer(client, "dupes")
    counted = metric(client, "uploads with duplicates", "COUNT")
    now = shared_world.clock.now_datetime().isoformat()
    event = {"customer_id": "dupes", "event_type": "upload", "timestamp": now, "transaction_id": "dup-1"}
    client.v1.usage.ingest(usage=[{**event, "properties": {"n": 1}}])
    client.v1.usage.ingest(usage=[{**event, "properties": {"n": 2}}])  # a retry with another body: still ignored
    assert month_value(client, customer, counted) == 1
    found = client.v1.usage.search(transaction_ids=["dup-1"])
    assert [(e.transaction_id, e.is_duplicate, (e.properties or {}).get("n")) for e in found] == [
        ("dup-1", False, 1),
        ("dup-1", True, 2),
    ]
    assert found[0].id != found[1].id
    assert found[1].matched_customer is not None and found[1].matched_customer.id == customer
    assert client.v1.usage.search(transaction_ids=["never-sent"]) == []
