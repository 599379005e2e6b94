"""What `billmig usage` does, apart from printing: read a JSON-lines file of usage events, feed the queue, move
dead letters back, and gather the routes and vendors the completeness check reads."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from billmig.adapters.metronome_ingest import MetronomeIngestSink
from billmig.adapters.s3_usage_journal import S3UsageJournal
from billmig.adapters.sqs_usage_queue import REASON_ATTRIBUTE, SQS_BATCH, SQSDeadLetters, drain, send_bodies
from billmig.adapters.stripe_meter_events import StripeMeterEventSink
from billmig.bulk import chunked
from billmig.progress import SubjectProgress
from billmig.usage.errors import InvalidUsageEvent
from billmig.usage.events import UsageEvent, parse_json_event
from billmig.usage.mapping import UsageRouterConfig, router_config_from_json
from billmig.usage.resend import ResendPorts, ResendResult, resend
from billmig.usage.routing import CustomerRoute, Destination

from billmig_cli import aws_target

SEND_CONCURRENCY = 8
MAX_SEND_ROUNDS = 5  # SendMessageBatch may take part of a batch; the rest is resent


def read_events(path: Path) -> tuple[list[UsageEvent], list[str]]:
    """Every event of a JSON-lines file, or every problem in it (file:line: field: what is wrong)."""
    events: list[UsageEvent] = []
    problems: list[str] = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return [], [f"{path}: no such file"]
    except UnicodeDecodeError as exc:
        return [], [f"{path}: not UTF-8 text ({exc})"]
    seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_json_event(line, f"{path}:{number}")
        except InvalidUsageEvent as exc:
            problems.append(str(exc))
            continue
        key = (event.customer_id, event.event_id)
        if key in seen:
            problems.append(f"{path}:{number}: event_id {event.event_id!r} repeats line {seen[key]}")
            continue
        seen[key] = number
        events.append(event)
    if not events and not problems:
        problems.append(f"{path}: no events")
    return events, problems


def queue_urls(stack_name: str) -> tuple[str, str]:
    outputs = aws_target.stack_outputs(stack_name)
    return outputs["UsageQueueUrl"], outputs["UsageDeadLetterQueueUrl"]


def send_events(queue_url: str, events: list[UsageEvent], progress: Callable[[int], None]) -> int:
    """Enqueue every event, ten per call, several calls at once; returns how many were sent."""
    sqs = aws_target.client("sqs")

    def send(part: list[UsageEvent]) -> int:
        pending = [event.model_dump_json() for event in part]
        for _ in range(MAX_SEND_ROUNDS):
            taken = send_bodies(sqs, queue_url, pending)
            pending = pending[taken:] if taken < len(pending) else []
            if not pending:
                break
        if pending:
            raise RuntimeError(f"SQS refused {len(pending)} messages {MAX_SEND_ROUNDS} times")
        progress(len(part))
        return len(part)

    with ThreadPoolExecutor(max_workers=SEND_CONCURRENCY) as pool:
        return sum(pool.map(send, chunked(events, SQS_BATCH)))


@dataclass
class Replayed:
    moved: int
    reasons: Counter[str]


def replay_dead_letters(queue_url: str, dead_letter_url: str) -> Replayed:
    """Move every dead-lettered event back to the queue (after a fix); counts them by reason."""
    sqs = aws_target.client("sqs")
    moved, reasons = 0, Counter[str]()
    for batch in drain(sqs, dead_letter_url):
        bodies = [m["Body"] for m in batch]
        if send_bodies(sqs, queue_url, bodies) != len(bodies):
            raise RuntimeError("SQS did not take every replayed event; nothing of this batch was deleted")
        entries: Any = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=dead_letter_url, Entries=entries)
        for m in batch:
            attribute = (m.get("MessageAttributes") or {}).get(REASON_ATTRIBUTE)
            reasons[attribute["StringValue"] if attribute else "redriven after repeated transient failures"] += 1
        moved += len(batch)
    return Replayed(moved, reasons)


def routes_of_run(items: list[SubjectProgress]) -> Iterator[CustomerRoute]:
    for item in items:
        if item.ingest_alias:
            yield CustomerRoute(item.ingest_alias, item.subject, item.phase, item.dual_write_from, item.cutover_at)


def router_config(stack_name: str) -> UsageRouterConfig:
    name = aws_target.stack_outputs(stack_name)["UsageRouterConfigParameter"]
    return router_config_from_json(aws_target.client("ssm").get_parameter(Name=name)["Parameter"]["Value"], name)


def resend_from_journal(
    stack_name: str,
    internal_id: str,
    destination: Destination,
    since: datetime | None,
    until: datetime | None,
    key: str,
    api_base: str | None,
) -> ResendResult:
    """`billmig.usage.resend.resend` with the stack's journal, config and dead-letter queue, and the given key."""
    outputs = aws_target.stack_outputs(stack_name)
    journal = S3UsageJournal(outputs["ImportBucketName"], client=aws_target.client("s3"))
    dead_letters = SQSDeadLetters(outputs["UsageDeadLetterQueueUrl"], client=aws_target.client("sqs"))

    def config() -> UsageRouterConfig:
        return router_config(stack_name)

    if destination is Destination.STRIPE:
        world = aws_target.world_now().timestamp() - time.time()  # the target's world may run ahead of this host
        sink = StripeMeterEventSink.connect(key, api_base, config().stripe_transport, now=lambda: time.time() + world)
        ports = ResendPorts(config, journal, dead_letters, stripe=sink)
    else:
        ports = ResendPorts(config, journal, dead_letters, metronome=MetronomeIngestSink.connect(key, api_base))
    return resend(ports, internal_id, destination, since, until)
