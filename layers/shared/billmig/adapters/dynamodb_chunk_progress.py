"""Chunk progress on the progress table, under the run `<import id>#chunks` so it never mixes with subject items.

The chunk is stored as one JSON document (a thousand outcomes would be a deeply nested map otherwise) beside the
count of records done, which the CLI's progress bar reads without the documents. Writes are guarded by `version`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import ProgressStoreUnavailable, StepClaimedElsewhere
from billmig.stigg.chunk_progress import ChunkProgress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def chunks_run(import_id: str) -> str:
    return f"{import_id}#chunks"


class DynamoDBChunkProgressStore:
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def load_chunk(self, import_id: str, chunk_key: str) -> ChunkProgress | None:
        try:
            item = self._client.get_item(
                TableName=self.table_name,
                Key={"run_id": {"S": chunks_run(import_id)}, "subject": {"S": chunk_key}},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"chunk progress {chunk_key}: {exc}") from exc
        return ChunkProgress.model_validate_json(item["document"]["S"]) if item else None

    def save_chunk(self, progress: ChunkProgress) -> None:
        expected = progress.version
        progress.version = expected + 1
        item = {
            "run_id": {"S": chunks_run(progress.import_id)},
            "subject": {"S": progress.chunk_key},
            "version": {"N": str(progress.version)},
            "done": {"N": str(len(progress.outcomes))},
            "document": {"S": progress.model_dump_json(exclude_defaults=False)},
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(run_id)"}
            if expected == 0
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
            }
        )
        try:
            self._client.put_item(TableName=self.table_name, Item=item, **condition)
        except ClientError as exc:
            progress.version = expected
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StepClaimedElsewhere(f"chunk {progress.chunk_key}: written by another Task meanwhile") from exc
            raise ProgressStoreUnavailable(f"chunk progress {progress.chunk_key}: {exc}") from exc
        except BotoCoreError as exc:
            progress.version = expected
            raise ProgressStoreUnavailable(f"chunk progress {progress.chunk_key}: {exc}") from exc

    def _query(self, import_id: str, projection: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            for page in self._client.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="run_id = :r",
                ExpressionAttributeValues={":r": {"S": chunks_run(import_id)}},
                ProjectionExpression=projection,
                ConsistentRead=True,
            ):
                items.extend(page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"chunk progress of {import_id}: {exc}") from exc
        return items

    def chunks_of(self, import_id: str) -> list[ChunkProgress]:
        return [ChunkProgress.model_validate_json(i["document"]["S"]) for i in self._query(import_id, "document")]

    def records_done(self, import_id: str) -> int:
        return sum(int(i.get("done", {}).get("N", "0")) for i in self._query(import_id, "done"))
