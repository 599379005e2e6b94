"""The usage journal's two uses on the local stack, checked per event through the vendors: the parallel run's
backfill (what the router sent to Stripe alone before the phase was written reaches Metronome once) and a rollback's
resend to Stripe (what went to Metronome alone reaches Stripe once; twice changes nothing; too old for Stripe is
dead-lettered with the reason); a crash right after each write they make, then a resume."""

from __future__ import annotations

import dataclasses
import inspect
import json
import uuid
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from billmig.adapters.usage_totals import VendorUsageTotals
from billmig.bulk import chunked
from billmig.idempotency_keys import usage_event_id
from billmig.usage import ports as usage_ports
from billmig.usage.events import UsageEvent
from billmig.usage.journal import JournalEntry, JournalPage, UsageJournal
from billmig.usage.mapping import UsageRouterConfig
from billmig.usage.ports import WRITE_METHODS
from billmig.usage.resend import ResendPorts, resend
from billmig.usage.routing import Destination
from billmig_cli.main import app
from billmig_local.stack import LocalStack
from metronome_book import ROUTER_CONFIG, Book, CrashAfter, SimulatedCrash, book, fresh_customer  # noqa: F401
from suite import metronome_receipts, stripe_stream_identifiers, until
from typer.testing import CliRunner

cli = CliRunner()
COMPUTE = "compute_minutes"


@pytest.fixture(scope="module")
def routed(book: Book) -> UsageRouterConfig:
    """The router config in the router's SSM parameter (as `billmig usage configure` stores it)."""
    config = UsageRouterConfig.model_validate_json(ROUTER_CONFIG.read_text())
    stack = book.stack
    stack.client("ssm").put_parameter(
        Name=stack.outputs["UsageRouterConfigParameter"], Value=config.model_dump_json(), Type="String", Overwrite=True
    )
    return config


def usage(alias: str, times: list[datetime], tag: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{tag}-{n}",
            "customer_id": alias,
            "event_name": COMPUTE,
            "timestamp": at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "properties": {"minutes": 1 + n % 9},
        }
        for n, at in enumerate(times)
    ]


def route(stack: LocalStack, events: list[dict[str, Any]]) -> None:
    """Through the usage queue and the router Lambda, until the queue is empty."""
    sqs, url = stack.client("sqs"), stack.outputs["UsageQueueUrl"]
    for part in chunked(events, 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(part)]
        assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == len(part)

    def drained() -> bool:
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return bool(found["ApproximateNumberOfMessages"] == found["ApproximateNumberOfMessagesNotVisible"] == "0")

    until(drained, timeout=120, what="the usage queue to drain")


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [usage_event_id(e["customer_id"], e["event_id"]) for e in events]


def assert_once_in_metronome(book: Book, expected: list[str], absent: list[str] | None = None) -> None:
    receipts = metronome_receipts(book.metronome, [*expected, *(absent or [])])
    assert receipts == Counter({(t, False): 1 for t in expected}), "each event once, none a duplicate, none other"


def stripe_accepted(book: Book) -> Counter[str]:
    return stripe_stream_identifiers(book.stack.emulators["stripe"].url)


def stripe_minutes(book: Book, config: UsageRouterConfig, customer: str, start: datetime, end: datetime) -> Decimal:
    rule = next(r for r in config.rules if r.stripe_event_name == COMPUTE)
    return VendorUsageTotals(book.stripe, book.metronome).stripe_total(customer, rule, start, end)


def minutes(events: list[dict[str, Any]]) -> Decimal:
    return Decimal(sum(e["properties"]["minutes"] for e in events))


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    """The dead-letter queue's messages, left there: each page is hidden while the next is read (other modules' letters
    may be more than a page), then every one is made visible again."""
    sqs, url = stack.client("sqs"), stack.outputs["UsageDeadLetterQueueUrl"]
    found: dict[str, dict[str, Any]] = {}
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
        ).get("Messages", [])
        if not got:
            break
        found.update({m["MessageId"]: m for m in got})
    for part in chunked(list(found.values()), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(part)
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return list(found.values())


def phase_start(book: Book) -> datetime:
    """The book's parallel-run start, or 20 days ago if another module moved the world clock further: the events
    around it must stay inside Stripe's (35 days) and Metronome's (34 days) backdating windows."""
    now: datetime = book.stack.clock.now_datetime()
    recent = (now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    return max(book.parallel_run_start, recent)


def stripe_only_before_the_phase(book: Book, tag: str) -> tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]:
    """A customer whose usage was routed before its migration: Stripe alone took it. Returns the Stripe id, the alias,
    the events from the parallel-run start on (to backfill) and those before it (Stripe's alone for good)."""
    alias = f"{tag}-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias, grants=False)
    start = phase_start(book)
    now = book.stack.clock.now_datetime()
    span = max((now - start).total_seconds() - 180, 60)
    after = usage(alias, [start + timedelta(seconds=60 + span * i / 12) for i in range(12)], f"{tag}-after")
    before = usage(alias, [start - timedelta(days=2, minutes=7 * i) for i in range(3)], f"{tag}-before")
    route(book.stack, after + before)
    return customer, alias, after, before


def test_usage_stripe_got_alone_before_the_phase_is_backfilled_to_metronome_once(
    book: Book, aws: LocalStack, routed: UsageRouterConfig
) -> None:
    customer, alias, after, before = stripe_only_before_the_phase(book, "backfill")
    assert metronome_receipts(book.metronome, ids(after + before)) == Counter()  # the router sent them to Stripe alone
    batch = f"backfill-{uuid.uuid4().hex[:8]}"
    book.start_run(batch, phase_start(book))

    results = book.run_steps(batch, customer)
    assert results[-1].outcome == "backfilled"
    assert_once_in_metronome(book, ids(after), absent=ids(before))
    start, now = phase_start(book), aws.clock.now_datetime()
    assert stripe_minutes(book, routed, customer, start - timedelta(days=3), now + timedelta(days=1)) == minutes(
        after + before
    )

    again = book.run_steps(batch, customer)  # a resumed execution: the step is done
    assert again[-1].outcome == "already done"
    assert resend(book.resend_ports(), alias, Destination.METRONOME, start).sent == 0
    assert_once_in_metronome(book, ids(after), absent=ids(before))

    result = cli.invoke(
        app,
        [
            "usage",
            "completeness",
            "--batch",
            batch,
            "--as-of",
            (now + timedelta(hours=49)).isoformat(),
            "--stripe-api-key",
            "sk_test_local",
            "--stripe-api-base",
            aws.emulators["stripe"].url,
            "--metronome-token",
            "local",
            "--metronome-api-base",
            aws.emulators["metronome"].url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "0 missing, 0 extra" in result.output


def metronome_only_after_cutover(book: Book, tag: str) -> tuple[str, str, datetime, list[dict[str, Any]]]:
    """A cut-over customer whose usage after its cutover went to Metronome alone, then rolled back."""
    alias = f"{tag}-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias, grants=False)
    book.metronome.v1.customers.create(name=f"Rolled back {alias}", ingest_aliases=[alias])
    now = book.stack.clock.now_datetime()
    cutover = (now - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
    batch = f"{tag}-{uuid.uuid4().hex[:6]}"
    phase: dict[str, Any] = {"ingest_alias": alias, "dual_write_from": now - timedelta(days=20), "cutover_at": cutover}
    book.store.set_phase(batch, customer, "cut_over", **phase)
    later = usage(alias, [cutover + timedelta(hours=5 * i + 1) for i in range(10)], f"{tag}-later")
    route(book.stack, later)
    book.store.set_phase(batch, customer, "rolled_back", **phase)
    return customer, alias, cutover, later


def test_a_rollback_resends_to_stripe_what_went_to_metronome_alone_once_and_twice_changes_nothing(
    book: Book, aws: LocalStack, routed: UsageRouterConfig
) -> None:
    customer, alias, cutover, later = metronome_only_after_cutover(book, "rollback")
    window = (cutover - timedelta(days=1), aws.clock.now_datetime() + timedelta(days=1))
    assert stripe_minutes(book, routed, customer, *window) == 0
    args = ["usage", "resend", "--customer", alias, "--to", "stripe", "--since", cutover.isoformat()]
    keys = ["--stripe-api-key", "sk_test_local", "--stripe-api-base", aws.emulators["stripe"].url]

    first = cli.invoke(app, args + keys)
    assert first.exit_code == 0, first.output
    assert stripe_minutes(book, routed, customer, *window) == minutes(later)
    accepted = stripe_accepted(book)
    assert [accepted[i] for i in ids(later)] == [1] * len(later)

    second = cli.invoke(app, args + keys)
    assert second.exit_code == 0, second.output
    assert stripe_minutes(book, routed, customer, *window) == minutes(later)
    assert stripe_accepted(book) == accepted  # nothing was sent at all
    assert_once_in_metronome(book, ids(later))


def old_metronome_only_event(book: Book, tag: str) -> tuple[str, dict[str, Any], UsageJournal]:
    """An event journaled 36 days ago as taken by Metronome alone: Stripe's window (35 days) is past."""
    alias = f"{tag}-{uuid.uuid4().hex[:6]}"
    customer = fresh_customer(book, alias, grants=False)
    [old] = usage(alias, [book.stack.clock.now_datetime() - timedelta(days=36)], f"{tag}-old")
    journal = book.resend_ports().journal
    entry = JournalEntry(UsageEvent.model_validate(old), frozenset({Destination.METRONOME}), customer)
    journal.record(JournalPage(alias, "batch-seeded", (entry,)))
    return alias, old, journal


def letters_for(stack: LocalStack, event: dict[str, Any]) -> list[str]:
    return [
        m["MessageAttributes"]["billmig-reason"]["StringValue"]
        for m in dead_letters(stack)
        if json.loads(m["Body"]).get("event_id") == event["event_id"]
    ]


def test_an_event_too_old_for_stripe_is_dead_lettered_with_its_reason_once(
    book: Book, aws: LocalStack, routed: UsageRouterConfig
) -> None:
    alias, old, _ = old_metronome_only_event(book, "too-old")
    args = ["usage", "resend", "--customer", alias, "--to", "stripe"]
    keys = ["--stripe-api-key", "sk_test_local", "--stripe-api-base", aws.emulators["stripe"].url]
    first = cli.invoke(app, args + keys)
    assert first.exit_code == 1, first.output
    assert "outside Stripe's window" in first.output
    [reason] = letters_for(aws, old)
    assert reason.startswith("resend to stripe: ") and "outside Stripe's window" in reason
    second = cli.invoke(app, args + keys)  # reported again, not dead-lettered again
    assert second.exit_code == 1, second.output
    assert len(letters_for(aws, old)) == 1


def test_the_crash_points_are_every_write_the_resend_ports_make() -> None:
    writing = set()
    for port in (
        usage_ports.StripeMeterSink,
        usage_ports.MetronomeIngestSink,
        usage_ports.DeadLetterSink,
        UsageJournal,
    ):
        for name, _ in inspect.getmembers(port, inspect.isfunction):
            if not name.startswith("_") and name != "read":
                writing.add((port.__name__, name))
    assert writing == set(WRITE_METHODS)


def crashing(ports: ResendPorts, port: str, method: str) -> tuple[ResendPorts, CrashAfter]:
    fields = {
        "StripeMeterSink": "stripe",
        "MetronomeIngestSink": "metronome",
        "UsageJournal": "journal",
        "DeadLetterSink": "dead_letters",
    }
    name = fields[port]
    wrapped = CrashAfter(getattr(ports, name), method, writes=[method])
    return dataclasses.replace(ports, **{name: wrapped}), wrapped


@pytest.mark.parametrize(("port", "method"), WRITE_METHODS)
def test_a_crash_after_each_write_then_a_resume_leaves_each_event_once(
    book: Book, aws: LocalStack, routed: UsageRouterConfig, port: str, method: str
) -> None:
    if port == "DeadLetterSink":  # a refusal is the only thing dead-lettered
        alias, old, _ = old_metronome_only_event(book, "crash-letter")
        ports, wrapped = crashing(book.resend_ports(), port, method)
        with pytest.raises(SimulatedCrash):
            resend(ports, alias, Destination.STRIPE)
        result = resend(book.resend_ports(), alias, Destination.STRIPE)
        assert result.refused_before + len(result.refused) == 1
        # Dead-lettered before it is journaled as refused: a crash between leaves a second letter, never none.
        assert 1 <= len(letters_for(aws, old)) <= 2
        assert stripe_accepted(book)[ids([old])[0]] == 0
        return
    if port == "StripeMeterSink":
        customer, alias, cutover, later = metronome_only_after_cutover(book, "crash-stripe")
        ports, wrapped = crashing(book.resend_ports(), port, method)
        with pytest.raises(SimulatedCrash):
            resend(ports, alias, Destination.STRIPE, cutover)
        assert resend(book.resend_ports(), alias, Destination.STRIPE, cutover).sent == len(later)
        assert resend(book.resend_ports(), alias, Destination.STRIPE, cutover).sent == 0
        accepted = stripe_accepted(book)
        assert [accepted[i] for i in ids(later)] == [2] * len(later)  # sent before the crash, again on the resume
        window = (cutover, aws.clock.now_datetime() + timedelta(days=1))
        assert stripe_minutes(book, routed, customer, *window) == minutes(later)  # Stripe deduped
        assert_once_in_metronome(book, ids(later))
        return
    backfilled, _, after, before = stripe_only_before_the_phase(book, f"crash-{method}")
    batch = f"crash-{uuid.uuid4().hex[:8]}"
    book.start_run(batch, phase_start(book))
    ports, wrapped = crashing(book.resend_ports(), port, method)
    with pytest.raises(SimulatedCrash):
        book.run_steps(batch, backfilled, resend_ports=ports)
    assert wrapped.writes == [method]
    results = book.run_steps(batch, backfilled)  # the resume: same execution, same runner
    assert results[-1].outcome == "backfilled"
    assert_once_in_metronome_allowing_resent(book, ids(after), ids(before), resent=method == "ingest")


def assert_once_in_metronome_allowing_resent(
    book: Book, expected: list[str], absent: list[str], *, resent: bool
) -> None:
    """Each event counted once. A crash after ingest, before journaling, resends every event on the resume; one
    after the journal page was written resends nothing: Metronome marks each resent receipt a duplicate."""
    receipts = metronome_receipts(book.metronome, [*expected, *absent])
    assert {t: receipts[(t, False)] for t in expected} == dict.fromkeys(expected, 1)
    duplicates = {t: receipts[(t, True)] for t in expected}
    assert duplicates == dict.fromkeys(expected, 1 if resent else 0)
    assert all(receipts[(t, d)] == 0 for t in absent for d in (False, True))


def test_backfill_step_is_in_the_state_machine_after_begin_parallel_run() -> None:
    definition = json.loads(
        (Path(__file__).resolve().parents[3] / "statemachine/metronome_migration.asl.json").read_text()
    )
    states = definition["States"]["MigrateCustomers"]["ItemProcessor"]["States"]
    assert states["BeginParallelRun"]["Next"] == "BackfillUsage"
    assert states["BackfillUsage"]["Resource"] == "${MetronomeBackfillUsageFunctionArn}"
    assert states["BackfillUsage"]["End"] is True  # the last step of the first Map: then every customer waits
    assert definition["States"]["MigrateCustomers"]["Next"] == "CutOverCustomers"
    cutover = definition["States"]["CutOverCustomers"]["ItemProcessor"]
    assert cutover["StartAt"] == "WaitForCutover"
