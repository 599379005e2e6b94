"""The usage queue and its dead-letter queue on SQS: what the router writes a refusal to, with its reason, and what
the CLI feeds and replays.

A refused event is written to the dead-letter queue by the router itself (SQS's redrive moves a message without
saying why); the reason travels as message attributes. An event that keeps failing transiently reaches the same
queue through the RedrivePolicy after `maxReceiveCount` receives, without a reason attribute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.bulk import chunked
from billmig.usage.ports import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH = 10  # SendMessageBatch / DeleteMessageBatch limit
REASON_ATTRIBUTE = "billmig-reason"
SOURCE_ATTRIBUTE = "billmig-source-message-id"
REASON_MAX = 2000


class SQSDeadLetters:
    def __init__(self, queue_url: str, *, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client: SQSClient = client or boto3.client("sqs")

    def dead_letter(self, letters: list[DeadLetter]) -> set[str]:
        unwritten: set[str] = set()
        for part in chunked(letters, SQS_BATCH):
            entries: Any = [
                {
                    "Id": str(i),
                    "MessageBody": letter.body,
                    "MessageAttributes": {
                        REASON_ATTRIBUTE: {"DataType": "String", "StringValue": letter.reason[:REASON_MAX]},
                        SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": letter.message_id},
                    },
                }
                for i, letter in enumerate(part)
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError):
                unwritten.update(letter.message_id for letter in part)
                continue
            unwritten.update(part[int(failed["Id"])].message_id for failed in answer.get("Failed", []))
        return unwritten


def send_bodies(client: Any, queue_url: str, bodies: list[str]) -> int:
    """Enqueue up to ten bodies in one call; returns how many SQS took (the caller resends the rest)."""
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
    answer = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return len(answer.get("Successful", []))


def drain(client: Any, queue_url: str, *, wait_seconds: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Receive batches until the queue answers empty; the caller deletes what it has dealt with."""
    while True:
        answer = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        )
        messages = answer.get("Messages", [])
        if not messages:
            return
        yield messages
