"""`billmig stigg import` as operators run it: bad files start nothing, a dry run sends nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billmig_cli.main import app
from billmig_local.stack import LocalStack
from import_world import GUIDE
from typer.testing import CliRunner


def test_a_file_copied_from_the_guide_starts_nothing(aws: LocalStack, tmp_path: Path, stigg_requests: Any) -> None:
    sfn = aws.client("stepfunctions")
    arn = aws.outputs["StiggImportStateMachineArn"]
    executions_before = len(sfn.list_executions(stateMachineArn=arn)["executions"])
    done = CliRunner().invoke(
        app, ["stigg", "import", "--customers-file", str(GUIDE / "customers.json"), "--report-dir", str(tmp_path)]
    )
    assert done.exit_code == 1
    assert "customers.json: line 5, column 36: a comment." in done.output
    assert "nothing was sent" in done.output
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == executions_before


def test_a_dry_run_checks_every_file_and_sends_nothing(aws: LocalStack, tmp_path: Path, stigg_requests: Any) -> None:
    stigg = Path(__file__).resolve().parents[3] / "events" / "stigg"
    before = stigg_requests("import")
    done = CliRunner().invoke(
        app,
        [
            "stigg", "import", "--dry-run",
            "--customers-file", str(stigg / "customers.json"),
            "--subscriptions-file", str(stigg / "free-subscriptions.json"),
            "--subscriptions-file", str(stigg / "custom-subscriptions.json"),
            "--usage-file", str(stigg / "usage.json"),
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "dry run: 3 customers, 2 subscriptions, 2 usage: every record is valid; nothing was sent" in done.output
    assert stigg_requests("import") == before
