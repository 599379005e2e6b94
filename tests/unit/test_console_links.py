"""Every command that starts an execution prints where to watch it: AWS's Step Functions console on AWS."""

from __future__ import annotations

import pytest
from billmig_cli import aws_target
from billmig_cli.console.links import execution_link


def test_on_aws_the_link_is_the_step_functions_console_of_the_executions_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_target.unpin()
    arn = "arn:aws:states:eu-west-2:111122223333:execution:billmig-metronome-migration-prod:wave-1"
    assert execution_link(arn) == (
        "https://eu-west-2.console.aws.amazon.com/states/home?region=eu-west-2#/v2/executions/details/" + arn
    )


def test_another_endpoint_gets_no_link_it_cannot_vouch_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://states.example.internal")
    aws_target.unpin()
    assert execution_link("arn:aws:states:us-east-1:1:execution:m:e") is None
