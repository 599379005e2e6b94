"""Configuration from the environment, as pydantic models, so a missing variable fails loudly at cold start."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

_M = TypeVar("_M", bound=BaseModel)


class ProgressTableSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    progress_table_name: str = Field(alias="PROGRESS_TABLE_NAME", min_length=3)


def from_environment(model: type[_M]) -> _M:
    return model.model_validate(dict(os.environ))


@cache
def progress_store() -> DynamoDBProgressStore:
    """One store per warm container (the boto3 client is reused across invocations)."""
    return DynamoDBProgressStore(from_environment(ProgressTableSettings).progress_table_name)
