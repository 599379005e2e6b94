"""The router's two vendor sinks against the emulators over HTTP, through the official SDKs.

Stripe's v1 meter events (the fallback a router config chooses with `stripe_transport: v1`): one call per event, a
resend answered "already exists" taken as success and counted once in the meter's event summary, each refusal
reported for its own event. Metronome's ingest: 100 events a call, the rest in the last call; a call refused for one
event halved until that event stands alone; a transient failure reported for exactly the events of its call. What
was sent is read back from the emulators' request logs (`/_emulator/requests`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import stripe
from billmig.adapters.metronome_ingest import MetronomeIngestSink
from billmig.adapters.stripe_meter_events import StripeMeterEventSink
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.ports import MetronomeEvent, StripeMeterEvent
from billmig_local.clock import WorldClock
from billmig_local.emulators import metronome as metronome_emulator
from billmig_local.emulators import stripe as stripe_emulator
from billmig_local.emulators.control_plane import FaultRule
from billmig_local.emulators.server import RunningEmulator
from metronome import Metronome
from suite import metronome_receipts

START = datetime(2030, 1, 20, tzinfo=UTC)
METER_EVENTS = "/v1/billing/meter_events"
V1_CONFIG = UsageRouterConfig.model_validate(
    {
        "internal_id_metadata_key": "internal_customer_id",
        "stripe_transport": "v1",
        "rules": [
            {
                "event_name": "compute_minutes",
                "stripe_event_name": "compute_minutes",
                "stripe_value_property": "minutes",
                "metronome_event_type": "compute_minutes",
                "metronome_billable_metric": "compute_minutes",
            }
        ],
    }
)


@dataclass
class Emulators:
    clock: WorldClock
    stripe: RunningEmulator
    metronome: RunningEmulator

    def requests(self, which: RunningEmulator, path: str) -> list[dict[str, Any]]:
        log = httpx.get(which.url + "/_emulator/requests", timeout=30).json()
        return [entry for entry in log if entry["path"] == path]

    def clear(self, which: RunningEmulator) -> None:
        httpx.delete(which.url + "/_emulator/requests", timeout=30).raise_for_status()
        httpx.delete(which.url + "/_emulator/faults", timeout=30).raise_for_status()


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    path = tmp_path_factory.mktemp("usage-sinks")
    clock = WorldClock(path / "clock.json", start_at=START.timestamp())
    stripe_running = stripe_emulator.start(clock=clock, state_dir=path)
    metronome_running = metronome_emulator.start(clock=clock, state_dir=path)
    try:
        yield Emulators(clock, stripe_running, metronome_running)
    finally:
        for running in (stripe_running, metronome_running):
            running.server.stop()
            running.extra["store"].close()


@pytest.fixture()
def each(emulators: Emulators) -> Emulators:
    """This test's requests and faults only."""
    for running in (emulators.stripe, emulators.metronome):
        emulators.clear(running)
    return emulators


def stripe_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local", base_addresses={"api": url, "meter_events": url}, max_network_retries=0)


# -- Stripe: v1 meter events ----------------------------------------------------------------------------------------
@dataclass
class Meter:
    id: str
    event_name: str


def make_meter(client: stripe.StripeClient, event_name: str) -> Meter:
    meter = client.v1.billing.meters.create(
        params={
            "display_name": event_name,
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    return Meter(meter.id, event_name)


def meter_event(identifier: str, meter: Meter, customer: str, value: int, at: datetime) -> StripeMeterEvent:
    return StripeMeterEvent(
        identifier=identifier,
        event_name=meter.event_name,
        timestamp=int(at.timestamp()),
        payload={"stripe_customer_id": customer, "value": str(value)},
    )


def summary_total(client: stripe.StripeClient, meter: Meter, customer: str, start: datetime, end: datetime) -> Decimal:
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id,
        params={"customer": customer, "start_time": int(start.timestamp()), "end_time": int(end.timestamp())},
    )
    return sum((Decimal(str(s.aggregated_value)) for s in summaries.auto_paging_iter()), Decimal(0))


def v1_sink(emulators: Emulators) -> StripeMeterEventSink:
    """As the router builds it for a config choosing v1 (`billmig.settings`), on the emulators' world clock."""
    return StripeMeterEventSink.connect(
        "sk_test_local", emulators.stripe.url, V1_CONFIG.stripe_transport, now=emulators.clock.now
    )


def test_v1_meter_events_sent_twice_are_counted_once_and_the_resend_is_success(each: Emulators, tag: str) -> None:
    client = stripe_client(each.stripe.url)
    meter = make_meter(client, f"compute_minutes.{tag}")
    customer = client.v1.customers.create(params={"name": f"v1 {tag}"}).id
    now = each.clock.now_datetime()
    values = [3, 5, 8, 13, 21, 34, 55]
    events = [
        meter_event(f"{tag}-{n}", meter, customer, value, now - timedelta(hours=n + 1))
        for n, value in enumerate(values)
    ]
    sink = v1_sink(each)

    assert sink.send(events) == {}
    first = each.requests(each.stripe, METER_EVENTS)
    assert sorted(json_identifiers(first)) == sorted(e.identifier for e in events)
    assert {e["status"] for e in first} == {200}
    assert each.requests(each.stripe, "/v2/billing/meter_event_stream") == []  # v1 chosen: never the stream

    each.clear(each.stripe)
    assert sink.send(events) == {}  # every one "already exists": counted before, so delivered
    again = each.requests(each.stripe, METER_EVENTS)
    assert len(again) == len(events) and {e["status"] for e in again} == {400}

    window = (now - timedelta(days=1), now + timedelta(hours=1))
    assert summary_total(client, meter, customer, *window) == sum(values)


def test_v1_refuses_only_the_events_stripe_refuses_each_with_its_reason(each: Emulators, tag: str) -> None:
    client = stripe_client(each.stripe.url)
    active = make_meter(client, f"compute_minutes.{tag}")
    retired = make_meter(client, f"retired.{tag}")
    client.v1.billing.meters.deactivate(retired.id)
    customer = client.v1.customers.create(params={"name": f"v1 {tag}"}).id
    now = each.clock.now_datetime()
    counted_before = meter_event(f"{tag}-before", active, customer, 4, now - timedelta(hours=2))
    sink = v1_sink(each)
    assert sink.send([counted_before]) == {}

    events = [
        meter_event(f"{tag}-new", active, customer, 6, now - timedelta(hours=1)),
        counted_before,  # already exists: success, not a refusal
        meter_event(f"{tag}-retired", retired, customer, 7, now - timedelta(hours=1)),
        meter_event(f"{tag}-old", active, customer, 9, now - timedelta(days=36)),
        meter_event(f"{tag}-nobody", active, "cus_nobody", 2, now - timedelta(hours=1)),
    ]
    refused = sink.send(events)

    assert sorted(refused) == [2, 3, 4]
    assert all(not r.transient for r in refused.values())
    assert "inactive" in refused[2].reason
    assert "35 days" in refused[3].reason
    assert "cus_nobody" in refused[4].reason
    window = (now - timedelta(days=40), now + timedelta(hours=1))
    assert summary_total(client, active, customer, *window) == 4 + 6


def test_a_throttled_v1_meter_event_is_refused_as_transient_for_sqs_to_deliver_again(each: Emulators, tag: str) -> None:
    client = stripe_client(each.stripe.url)
    meter = make_meter(client, f"compute_minutes.{tag}")
    customer = client.v1.customers.create(params={"name": f"v1 {tag}"}).id
    now = each.clock.now_datetime()
    events = [meter_event(f"{tag}-{n}", meter, customer, 1, now - timedelta(hours=1)) for n in range(3)]
    each.stripe.control.add_fault(FaultRule(path=f"^{METER_EVENTS}$", status=429, times=1))
    sink = StripeMeterEventSink(client, "v1", now=each.clock.now)  # no SDK retries: the fault reaches the sink

    refused = sink.send(events)

    assert len(refused) == 1
    [(index, refusal)] = refused.items()
    assert refusal.transient is True
    injected = [e for e in each.requests(each.stripe, METER_EVENTS) if e["injected"]]
    assert [e["status"] for e in injected] == [429]
    window = (now - timedelta(days=1), now + timedelta(hours=1))
    assert summary_total(client, meter, customer, *window) == 2  # the other two were taken
    assert sink.send([events[index]]) == {}  # SQS delivers it again
    assert summary_total(client, meter, customer, *window) == 3


def test_the_stream_refuses_an_inactive_or_unknown_meters_events_before_sending_and_sends_the_rest(
    each: Emulators, tag: str
) -> None:
    """The v2 stream answers before it validates (Stripe would drop these later, unseen): the sink checks first."""
    client = stripe_client(each.stripe.url)
    active = make_meter(client, f"compute_minutes.{tag}")
    retired = make_meter(client, f"retired.{tag}")
    client.v1.billing.meters.deactivate(retired.id)
    customer = client.v1.customers.create(params={"name": f"stream {tag}"}).id
    now = each.clock.now_datetime()
    unknown = Meter("none", f"no_such_meter.{tag}")
    events = [
        meter_event(f"{tag}-ok", active, customer, 5, now - timedelta(hours=1)),
        meter_event(f"{tag}-retired", retired, customer, 7, now - timedelta(hours=1)),
        meter_event(f"{tag}-unknown", unknown, customer, 9, now - timedelta(hours=1)),
    ]
    sink = StripeMeterEventSink(client, "stream", now=each.clock.now)

    refused = sink.send(events)

    assert sorted(refused) == [1, 2] and not any(r.transient for r in refused.values())
    assert refused[1].reason == f"the Stripe meter for {retired.event_name!r} is inactive"
    assert refused[2].reason == f"no Stripe meter for event_name {unknown.event_name!r}"
    streamed = [
        event["identifier"]
        for entry in each.requests(each.stripe, "/v2/billing/meter_event_stream")
        for event in json.loads(entry["body"])["events"]
    ]
    assert streamed == [f"{tag}-ok"]
    window = (now - timedelta(days=1), now + timedelta(hours=1))
    assert summary_total(client, active, customer, *window) == 5


def json_identifiers(entries: list[dict[str, Any]]) -> list[str]:
    """The `identifier` of each logged v1 meter event call (a form-encoded body)."""
    return [parse_qs(e["body"])["identifier"][0] for e in entries]


# -- Metronome: ingest ----------------------------------------------------------------------------------------------
def metronome_events(tag: str, n: int, now: datetime) -> list[MetronomeEvent]:
    return [
        MetronomeEvent(
            transaction_id=f"{tag}-{i}",
            customer_id=f"alias-{tag}",
            event_type="compute_minutes",
            timestamp=(now - timedelta(minutes=i + 1)).isoformat().replace("+00:00", "Z"),
            properties={"minutes": i % 7 + 1},
        )
        for i in range(n)
    ]


def ingest_call_sizes(each: Emulators) -> list[tuple[int, int]]:
    """(events in the call, status) of each `POST /v1/ingest`, in order."""
    return [(len(json.loads(e["body"])), e["status"]) for e in each.requests(each.metronome, "/v1/ingest")]


def metronome(each: Emulators) -> Metronome:
    return Metronome(bearer_token="local", base_url=each.metronome.url, max_retries=0)


def test_250_events_are_ingested_in_calls_of_100_100_and_50_and_a_resend_counts_nothing_twice(
    each: Emulators, tag: str
) -> None:
    events = metronome_events(tag, 250, each.clock.now_datetime())
    sink = MetronomeIngestSink.connect("local", each.metronome.url)

    assert sink.ingest(events) == {}
    assert ingest_call_sizes(each) == [(100, 200), (100, 200), (50, 200)]
    calls = [json.loads(e["body"]) for e in each.requests(each.metronome, "/v1/ingest")]
    assert [event["transaction_id"] for call in calls for event in call] == [e.transaction_id for e in events]

    assert sink.ingest(events) == {}  # a redelivered batch: every transaction id is a duplicate Metronome ignores
    receipts = metronome_receipts(metronome(each), [e.transaction_id for e in events])
    assert {t for (t, duplicate), n in receipts.items() if not duplicate and n == 1} == {
        e.transaction_id for e in events
    }
    assert sum(n for (_, duplicate), n in receipts.items() if duplicate) == len(events)


def test_one_event_metronome_refuses_is_isolated_by_halving_its_call_and_keeps_its_own_index(
    each: Emulators, tag: str
) -> None:
    now = each.clock.now_datetime()
    events = metronome_events(tag, 250, now)
    too_old = events[150]
    events[150] = MetronomeEvent(
        too_old.transaction_id,
        too_old.customer_id,
        too_old.event_type,
        (now - timedelta(days=40)).isoformat().replace("+00:00", "Z"),
        too_old.properties,
    )
    sink = MetronomeIngestSink(metronome(each))

    refused = sink.ingest(events)

    assert list(refused) == [150]
    assert not refused[150].transient and "34 days" in refused[150].reason
    sizes = ingest_call_sizes(each)
    assert sizes[:2] == [(100, 200), (100, 400)]  # the second call refused as a whole...
    assert (1, 400) in sizes and all(n <= 100 for n, _ in sizes)  # ...halved down to the one event
    assert sum(n for n, status in sizes if status == 200) == 249
    receipts = metronome_receipts(metronome(each), [e.transaction_id for e in events])
    counted = {t for (t, duplicate) in receipts if not duplicate}
    assert counted == {e.transaction_id for e in events} - {too_old.transaction_id}


def test_a_failed_ingest_call_is_transient_for_exactly_its_own_events(each: Emulators, tag: str) -> None:
    events = metronome_events(tag, 250, each.clock.now_datetime())
    each.metronome.control.add_fault(FaultRule(path="^/v1/ingest$", status=500, times=1))
    sink = MetronomeIngestSink(metronome(each))

    refused = sink.ingest(events)

    assert sorted(refused) == list(range(100))  # the first call's events, and only them
    assert all(r.transient for r in refused.values())
    assert ingest_call_sizes(each) == [(100, 500), (100, 200), (50, 200)]
    assert sink.ingest([events[i] for i in refused]) == {}
    receipts = metronome_receipts(metronome(each), [e.transaction_id for e in events])
    assert {t for (t, duplicate) in receipts if not duplicate} == {e.transaction_id for e in events}


@pytest.fixture()
def tag() -> str:
    """Distinct names per test on the module's emulators."""
    return f"t{secrets.token_hex(4)}"
