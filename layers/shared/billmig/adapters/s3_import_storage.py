"""Import files and chunks on S3."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import VendorUnavailable
from billmig.stigg.errors import InvalidImportFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3ImportStorage:
    def __init__(self, bucket: str, *, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client: S3Client = client or boto3.client("s3")

    def read_text(self, key: str) -> str:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise InvalidImportFile(f"s3://{self.bucket}/{key}: no such file") from exc
            raise VendorUnavailable(f"S3 get s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise VendorUnavailable(f"S3 get s3://{self.bucket}/{key}: {exc}") from exc
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidImportFile(f"{key.rsplit('/', 1)[-1]}: not UTF-8 text ({exc})") from exc

    def write_text(self, key: str, text: str, content_type: str = "application/json") -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"S3 put s3://{self.bucket}/{key}: {exc}") from exc

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_text(key))

    def write_json(self, key: str, document: Any) -> None:
        self.write_text(key, json.dumps(document, separators=(",", ":")))
