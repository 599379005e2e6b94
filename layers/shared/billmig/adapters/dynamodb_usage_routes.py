"""`RouteSource` on the progress table's sparse `by-ingest-alias` index: the newest phase written for an internal id.

The index holds only subjects whose phase was set (the parallel-run step writes the alias with the phase), keyed by
alias and sorted by `updated_at`, so one query with `Limit=1` newest-first answers; a customer moved again in a later
batch is found in its latest run.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import ProgressStoreUnavailable
from billmig.usage.routing import CustomerRoute

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ALIAS_INDEX = "by-ingest-alias"


def _time(item: dict[str, Any], key: str) -> datetime | None:
    value = item.get(key, {}).get("S")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class DynamoDBRouteSource:
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def route_of(self, internal_id: str) -> CustomerRoute | None:
        try:
            answer = self._client.query(
                TableName=self.table_name,
                IndexName=ALIAS_INDEX,
                KeyConditionExpression="ingest_alias = :a",
                ExpressionAttributeValues={":a": {"S": internal_id}},
                ScanIndexForward=False,
                Limit=1,
            )
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"progress table {self.table_name}: route of {internal_id}: {exc}") from exc
        items = answer.get("Items", [])
        if not items:
            return None
        item: dict[str, Any] = dict(items[0])
        return CustomerRoute(
            internal_id=internal_id,
            stripe_customer_id=item["subject"]["S"],
            phase=item.get("phase", {}).get("S"),
            dual_write_from=_time(item, "dual_write_from"),
            cutover_at=_time(item, "cutover_at"),
            run_id=item["run_id"]["S"],
        )
