"""The parity ledger on the progress table, under the run `parity#<stripe customer id>` so it never mixes with the
migration's subject items: one item per checked period (`period#<start>`, the newest run's result replaces the older)
and one per approval (`approval#<instant>`, never replaced: the audit trail). The `state` attribute is left out, so
these items stay out of the `by-state` index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import ProgressStoreUnavailable
from billmig.parity.verdicts import Approval, PeriodParity

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PERIOD_PREFIX = "period#"
APPROVAL_PREFIX = "approval#"


def parity_run(stripe_customer_id: str) -> str:
    return f"parity#{stripe_customer_id}"


class DynamoDBParityLedger:
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def record(self, result: PeriodParity) -> None:
        self._put(
            result.stripe_customer_id,
            f"{PERIOD_PREFIX}{result.period_start.isoformat()}",
            result.model_dump_json(),
            batch_id=result.batch_id,
        )

    def periods(self, stripe_customer_id: str) -> list[PeriodParity]:
        return [PeriodParity.model_validate_json(d) for d in self._documents(stripe_customer_id, PERIOD_PREFIX)]

    def approve(self, approval: Approval) -> None:
        self._put(
            approval.stripe_customer_id,
            f"{APPROVAL_PREFIX}{approval.approved_at.isoformat()}",
            approval.model_dump_json(),
        )

    def approvals(self, stripe_customer_id: str) -> list[Approval]:
        return [Approval.model_validate_json(d) for d in self._documents(stripe_customer_id, APPROVAL_PREFIX)]

    def _put(self, stripe_customer_id: str, subject: str, document: str, **attributes: str) -> None:
        item: dict[str, Any] = {
            "run_id": {"S": parity_run(stripe_customer_id)},
            "subject": {"S": subject},
            "document": {"S": document},
            **{name: {"S": value} for name, value in attributes.items()},
        }
        try:
            self._client.put_item(TableName=self.table_name, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"parity ledger {subject} of {stripe_customer_id}: {exc}") from exc

    def _documents(self, stripe_customer_id: str, prefix: str) -> list[str]:
        """Every document under `prefix`, in key order (ISO instants sort by time)."""
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="run_id = :r AND begins_with(subject, :p)",
                ExpressionAttributeValues={":r": {"S": parity_run(stripe_customer_id)}, ":p": {"S": prefix}},
                ConsistentRead=True,
            )
            return [item["document"]["S"] for page in pages for item in page.get("Items", [])]
        except (ClientError, BotoCoreError) as exc:
            raise ProgressStoreUnavailable(f"parity ledger of {stripe_customer_id}: {exc}") from exc
