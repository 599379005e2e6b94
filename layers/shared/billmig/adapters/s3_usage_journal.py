"""`UsageJournal` on S3: `usage-journal/<internal id>/<first day>/<last day>/<page id>.jsonl`, one JSON line per event.

The key is the customer (URL-quoted), then the UTC days of the page's first and last event, so a window is read with
one paginated listing of the customer's prefix (keys only) and one GET per page that overlaps it (a few at a time).
Writing a page is one PutObject; a page id that repeats overwrites itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import VendorUnavailable
from billmig.usage.journal import JournalEntry, JournalPage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

JOURNAL_PREFIX = "usage-journal/"
READ_CONCURRENCY = 8
POOL_CONNECTIONS = 104  # the router writes up to 100 pages at once (one per customer of a batch); boto3 defaults to 10


def customer_prefix(internal_id: str) -> str:
    return f"{JOURNAL_PREFIX}{quote(internal_id, safe='')}/"


def page_key(page: JournalPage) -> str:
    days = f"{page.first_day.isoformat()}/{page.last_day.isoformat()}"
    return f"{customer_prefix(page.internal_id)}{days}/{page.page_id}.jsonl"


class S3UsageJournal:
    def __init__(self, bucket: str, *, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client: S3Client = client or boto3.client("s3", config=Config(max_pool_connections=POOL_CONNECTIONS))

    def record(self, page: JournalPage) -> None:
        key = page_key(page)
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=page.body().encode(), ContentType="application/x-ndjson"
            )
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"S3 put s3://{self.bucket}/{key}: {exc}") from exc

    def read(self, internal_id: str, since: datetime | None, until: datetime | None) -> Iterator[JournalEntry]:
        keys = list(self._keys(internal_id, since, until))
        with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
            for text in pool.map(self._get, keys):
                for line in text.splitlines():
                    if line:
                        yield JournalEntry.from_json(json.loads(line))

    def _keys(self, internal_id: str, since: datetime | None, until: datetime | None) -> Iterator[str]:
        prefix = customer_prefix(internal_id)
        first_wanted = since.date().isoformat() if since is not None else ""
        last_wanted = until.date().isoformat() if until is not None else "9999-12-31"
        try:
            for listing in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in listing.get("Contents", []):
                    first, last, _ = item["Key"][len(prefix) :].split("/", 2)
                    if first > last_wanted:
                        return  # keys sort by first day: no later page overlaps
                    if last >= first_wanted:
                        yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"S3 list s3://{self.bucket}/{prefix}: {exc}") from exc

    def _get(self, key: str) -> str:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"S3 get s3://{self.bucket}/{key}: {exc}") from exc
