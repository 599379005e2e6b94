"""`CustomerListing` on the progress table: a batch's subjects (a query on the run), or every subject in a phase
across batches (a scan of the sparse `by-ingest-alias` index: only subjects whose phase was ever set are in it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.errors import ProgressStoreUnavailable
from billmig.progress import SubjectProgress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ALIAS_INDEX = "by-ingest-alias"


class DynamoDBParityCustomers:
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._store = DynamoDBProgressStore(table_name, client=self._client)

    def all_in_run(self, run_id: str) -> list[SubjectProgress]:
        return self._store.all_in_run(run_id)

    def in_phases(self, phases: frozenset[str]) -> list[tuple[str, str]]:
        """The newest item per ingest alias decides, as it does for the usage router."""
        newest: dict[str, tuple[str, str, str, str | None]] = {}  # alias -> (updated_at, run_id, subject, phase)
        try:
            pages = self._client.get_paginator("scan").paginate(
                TableName=self.table_name,
                IndexName=ALIAS_INDEX,
                ProjectionExpression="run_id, subject, ingest_alias, updated_at, phase",
            )
            for page in pages:
                for item in page.get("Items", []):
                    alias, updated = item["ingest_alias"]["S"], item["updated_at"]["S"]
                    if alias not in newest or updated > newest[alias][0]:
                        phase = item.get("phase", {}).get("S")
                        newest[alias] = (updated, item["run_id"]["S"], item["subject"]["S"], phase)
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"customers in phases {sorted(phases)}: {exc}") from exc
        return [(run, subject) for _, run, subject, phase in newest.values() if phase in phases]
