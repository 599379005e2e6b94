"""Which AWS the CLI talks to: real AWS by default, or the local stack when an endpoint URL says so.

Only the standard mechanisms are used (`AWS_ENDPOINT_URL`, the default credential chain), so every command works the
same against AWS and against `billmig local up`.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

DEFAULT_STATE_DIR = Path(".local")
DEFAULT_STACK = "billmig"


def use_endpoint(endpoint_url: str | None) -> None:
    """Point boto3 at `endpoint_url`; a loopback endpoint also gets placeholder credentials and a region."""
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    current = os.environ.get("AWS_ENDPOINT_URL")
    if current and urlparse(current).hostname in LOOPBACK:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local() -> bool:
    """The clients talk to the local stack (a loopback endpoint)."""
    current = endpoint_url()
    return bool(current) and urlparse(current).hostname in LOOPBACK


def world_now() -> datetime:
    """The target's clock: the local stack's world clock (its control plane; it may run ahead), else this machine's."""
    if is_local():
        with urllib.request.urlopen(f"{endpoint_url()}/_billmig/clock", timeout=10) as response:  # noqa: S310 - loopback
            return datetime.fromisoformat(json.loads(response.read())["iso"].replace("Z", "+00:00"))
    return datetime.now(UTC)


def local_endpoints(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, str | None]:
    path = state_dir / "endpoints.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is `billmig local up` running (with --state-dir {state_dir})?")
    endpoints: dict[str, str | None] = json.loads(path.read_text())
    return endpoints


def local_control_url(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """The local stack's control plane: the configured endpoint if it is local, else the one `local up` wrote."""
    current = os.environ.get("AWS_ENDPOINT_URL")
    if current:
        return current.rstrip("/")
    aws = local_endpoints(state_dir).get("aws")
    if not aws:
        raise FileNotFoundError("no local AWS endpoint recorded")
    use_endpoint(aws)
    return aws


_explicit: dict[str, str] = {}


def pin_local_endpoint(endpoint_url: str, region: str) -> None:
    """Pin the clients to the local stack without touching the environment: for callers that share a process with
    it, whose in-process Lambdas swap the process environment while they run. moto takes any credentials."""
    _explicit.clear()
    _explicit.update(endpoint_url=endpoint_url, region_name=region, aws_access_key_id="local")
    _explicit["aws_secret_access_key"] = "local"
    stack_outputs.cache_clear()


def unpin() -> None:
    _explicit.clear()
    stack_outputs.cache_clear()


def endpoint_url() -> str | None:
    """The endpoint the clients use: a pinned one, else `AWS_ENDPOINT_URL`; None means AWS itself."""
    return _explicit.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None


def client(service: str) -> Any:
    return boto3.client(service, **_explicit)  # type: ignore[call-overload]


@cache
def stack_outputs(stack_name: str = DEFAULT_STACK) -> dict[str, str]:
    stack = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
