"""`FeatureFlags` on one SSM String parameter holding JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from billmig.errors import VendorUnavailable
from billmig.feature_flags import parse_flags

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class SSMFeatureFlags:
    def __init__(self, parameter_name: str, *, client: SSMClient | None = None) -> None:
        self.parameter_name = parameter_name
        self._client: SSMClient = client or boto3.client("ssm")

    def read(self) -> dict[str, Any]:
        try:
            text = self._client.get_parameter(Name=self.parameter_name)["Parameter"].get("Value", "{}")
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"SSM parameter {self.parameter_name}: {exc}") from exc
        return parse_flags(text, f"SSM parameter {self.parameter_name}")

    def write(self, flags: dict[str, Any]) -> None:
        try:
            self._client.put_parameter(
                Name=self.parameter_name, Value=json.dumps(flags, sort_keys=True), Type="String", Overwrite=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise VendorUnavailable(f"SSM parameter {self.parameter_name}: {exc}") from exc
