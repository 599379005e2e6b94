"""Where an operator sees an execution: the AWS Step Functions console on AWS, the local console on the local stack."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx

from billmig_cli import aws_target
from billmig_cli.executions import aws_console_url

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_local(endpoint_url: str | None) -> bool:
    return bool(endpoint_url) and urlparse(endpoint_url).hostname in LOOPBACK


def execution_link(execution_arn: str) -> str | None:
    """The page of `execution_arn`: AWS's console without an endpoint URL; the local stack's console (as its control
    plane names it) with a local one; none for any other endpoint."""
    from billmig_cli.console.app import execution_path

    endpoint = aws_target.endpoint_url()
    if not endpoint:
        return aws_console_url(execution_arn)
    if not is_local(endpoint):
        return None
    try:
        console = httpx.get(endpoint.rstrip("/") + "/_billmig/endpoints", timeout=5).json().get("console")
    except (httpx.HTTPError, ValueError):
        return None
    return f"{console}{execution_path(execution_arn)}" if console else None
