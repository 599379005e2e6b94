"""Lambda's SQS poller, locally: what moto's event source mapping does not do (see `moto_patches`).

For every enabled mapping from an SQS queue to a function it receives batches of up to `BatchSize` messages,
waiting up to `MaximumBatchingWindowInSeconds` to fill one, invokes the function through the Lambda API with the
event Lambda sends, and deletes what was delivered: every message unless the mapping has `ReportBatchItemFailures`
and the function listed it in `batchItemFailures` (or the function failed: then none). What is not deleted comes
back after the queue's visibility timeout, and SQS's RedrivePolicy moves it to the dead-letter queue after
`maxReceiveCount` receives (moto honours both, on the host clock).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
# An idle loop long-polls (moto's ReceiveMessage waits on the queue's condition, woken by a send) instead of asking
# every few milliseconds: polling at 20/s cost a tenth of a core on the stack's process, which is what binds it.
LONG_POLL_SECONDS = 1
# Listing the mappings costs 1 + one request per mapping: the loop re-reads them this often, not on every poll, so a
# new or disabled mapping is seen within it.
MAPPINGS_REFRESH_SECONDS = 1.0
SQS_MAX_RECEIVE = 10  # ReceiveMessage returns at most ten; a batch is gathered over several receives


@dataclass(frozen=True)
class Mapping:
    uuid: str
    queue_url: str
    queue_arn: str
    function_arn: str
    batch_size: int
    window_seconds: float
    reports_item_failures: bool


@dataclass
class PolledBatch:
    function_arn: str
    received: int
    deleted: int
    errored: bool


class SqsPoller:
    def __init__(self, *, clients: Callable[[str], Any], on_batch: Callable[[PolledBatch], None] | None = None) -> None:
        self._client = clients
        self._on_batch = on_batch
        self.batches: list[PolledBatch] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def mappings(self) -> list[Mapping]:
        lam, sqs = self._client("lambda"), self._client("sqs")
        found = []
        for m in lam.list_event_source_mappings().get("EventSourceMappings", []):
            arn = m.get("EventSourceArn", "")
            if ":sqs:" not in arn or m.get("State", "Enabled") != "Enabled":
                continue
            account, name = arn.split(":")[4:6]
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            found.append(
                Mapping(
                    uuid=m["UUID"],
                    queue_url=url,
                    queue_arn=arn,
                    function_arn=m["FunctionArn"],
                    batch_size=int(m.get("BatchSize") or 10),
                    window_seconds=float(m.get("MaximumBatchingWindowInSeconds") or 0),
                    reports_item_failures="ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or []),
                )
            )
        return found

    def poll_once(self, mappings: list[Mapping] | None = None) -> int:
        """One batch per mapping (these, or the ones listed now), if any message is waiting; returns how many
        messages were received."""
        with self._lock:
            return sum(self._poll(mapping) for mapping in (self.mappings() if mappings is None else mappings))

    def _poll(self, mapping: Mapping, wait_seconds: int = 0) -> int:
        """One batch; the first receive waits up to `wait_seconds` for a message (SQS long polling)."""
        sqs = self._client("sqs")
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + mapping.window_seconds
        while len(messages) < mapping.batch_size:
            got = sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, mapping.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0 if messages else wait_seconds,
            ).get("Messages", [])
            messages.extend(got)
            if not got and (not messages or time.monotonic() >= deadline):
                break
        if not messages:
            return 0
        answer = self._client("lambda").invoke(
            FunctionName=mapping.function_arn, Payload=json.dumps(_event(mapping, messages)).encode()
        )
        errored = "FunctionError" in answer
        keep: set[str] = {m["MessageId"] for m in messages} if errored else set()
        if not errored and mapping.reports_item_failures:
            payload = json.loads(answer["Payload"].read() or b"null") or {}
            failures = payload.get("batchItemFailures", []) if isinstance(payload, dict) else []
            keep = {f["itemIdentifier"] for f in failures}
        done = [m for m in messages if m["MessageId"] not in keep]
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=entries)
        batch = PolledBatch(mapping.function_arn, len(messages), len(done), errored)
        self.batches.append(batch)
        if self._on_batch is not None:
            self._on_batch(batch)
        return len(messages)

    # -- background loop
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        mappings: list[Mapping] = []
        listed = float("-inf")
        received = 1
        while not self._stop.is_set():
            try:
                if time.monotonic() - listed >= MAPPINGS_REFRESH_SECONDS:
                    mappings, listed = self.mappings(), time.monotonic()
                wait = 0 if received else LONG_POLL_SECONDS
                with self._lock:
                    received = sum(self._poll(mapping, wait) for mapping in mappings)
            except Exception:
                log.exception("sqs poller failed")
                received = 0
                self._stop.wait(LONG_POLL_SECONDS)
            if not mappings:
                self._stop.wait(MAPPINGS_REFRESH_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _event(mapping: Mapping, messages: list[dict[str, Any]]) -> dict[str, Any]:
    region = mapping.queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": mapping.queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
