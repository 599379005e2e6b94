"""The parity report step's Lambda on the local stack, and `billmig parity report`: a run's recorded results (the
ledger, the check steps on the progress store, the customer list in S3) become three files in S3, which the command
fetches, or builds from the ledger when the step has not written them."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.s3_import_storage import S3ImportStorage
from billmig.errors import VendorUnavailable
from billmig.metronome.storage import snapshot_key
from billmig.parity.run import customers_key, parity_progress_run
from billmig.parity.verdicts import Approval
from billmig.steps import Step, StepKey, StepOutcome, run_once
from billmig_cli import parity_report
from billmig_cli.main import app
from billmig_local.stack import LocalStack
from parity_results import BATCH, CHECKED_AT, HOSTILE_NAME, run_results
from typer.testing import CliRunner


def seed_run(stack: LocalStack, tag: str, *, report_step: bool) -> dict[str, Any]:
    """A parity run as its checks leave it: twelve customers checked (periods in the ledger), one whose check
    failed, one with nothing to compare yet, and one approval; with the report written by the Lambda or not."""
    table, bucket = stack.outputs["ProgressTableName"], stack.outputs["ImportBucketName"]
    dynamodb = stack.client("dynamodb")
    ledger = DynamoDBParityLedger(table, client=dynamodb)
    store = DynamoDBProgressStore(table, client=dynamodb)
    storage = S3ImportStorage(bucket, client=stack.client("s3"))
    run = f"parity-{tag}"
    customers: list[str] = []
    for result in run_results():
        customer = f"{result.stripe_customer_id}_{tag}"
        ledger.record(result.model_copy(update={"stripe_customer_id": customer, "parity_run_id": run}))
        customers.append(customer)
    ledger.approve(Approval(stripe_customer_id=f"cus_case_{tag}", approved_by="ops@example.com",
                            approved_at=CHECKED_AT, reason="case fix agreed for the next cycle"))  # fmt: skip
    storage.write_json(snapshot_key(BATCH, f"cus_hostile_{tag}"), {"customer": {"name": HOSTILE_NAME}})
    for customer in [*customers, f"cus_new_{tag}"]:
        run_once(store, StepKey(parity_progress_run(run), customer, Step.PARITY_CHECK), "test",
                 lambda _: StepOutcome("passed"))  # fmt: skip

    def broken(_: Any) -> StepOutcome:
        raise VendorUnavailable("Stripe 503 on invoices.list")

    with pytest.raises(VendorUnavailable):
        run_once(store, StepKey(parity_progress_run(run), f"cus_broken_{tag}", Step.PARITY_CHECK), "test", broken)
    everyone = [*customers, f"cus_new_{tag}", f"cus_broken_{tag}"]
    storage.write_json(customers_key(run), [{"batch_id": BATCH, "stripe_customer_id": c} for c in everyone])
    written = None
    if report_step:
        response = stack.client("lambda").invoke(
            FunctionName="billmig-parity-report-local", Payload=json.dumps({"parity_run_id": run})
        )
        assert "FunctionError" not in response, response["Payload"].read()
        written = json.loads(response["Payload"].read())
    return {"run": run, "tag": tag, "written": written, "bucket": bucket}


@pytest.fixture(scope="module")
def reported(local_stack: LocalStack) -> dict[str, Any]:
    return seed_run(local_stack, uuid.uuid4().hex[:8], report_step=True)


def test_the_step_writes_json_csv_and_html_and_says_completed_with_errors(
    local_stack: LocalStack, reported: dict[str, Any]
) -> None:
    written, run = reported["written"], reported["run"]
    assert written["status"] == "completed with errors"
    assert written["status_detail"] == "completed with errors: 1 failed, 1 skipped"
    assert written["counts"] == {
        "customers_checked": 12,
        "within_tolerance": 5,
        "held_back": 6,  # seven faulty, one of them approved
        "failed": 1,
        "skipped": 1,
        "differences": 8,
        "cents_of_difference": 23_603,
    }
    s3 = local_stack.client("s3")
    keys = [written["json_key"], written["csv_key"], written["html_key"]]
    assert keys == [f"parity/{run}/report.json", f"parity/{run}/report.csv", f"parity/{run}/report.html"]
    types = [s3.head_object(Bucket=reported["bucket"], Key=k)["ContentType"] for k in keys]
    assert types == ["application/json", "text/csv; charset=utf-8", "text/html; charset=utf-8"]
    document = json.loads(s3.get_object(Bucket=reported["bucket"], Key=keys[0])["Body"].read())
    unchecked = {u["stripe_customer_id"]: u for u in document["unchecked"]}
    assert unchecked[f"cus_broken_{reported['tag']}"]["reason"] == "VendorUnavailable: Stripe 503 on invoices.list"
    assert unchecked[f"cus_new_{reported['tag']}"]["outcome"] == "skipped"
    customers = {c["stripe_customer_id"]: c for c in document["customers"]}
    case = customers[f"cus_case_{reported['tag']}"]
    assert not case["held_back"] and case["gate_reason"].startswith("approved by ops@example.com")
    assert customers[f"cus_hostile_{reported['tag']}"]["customer_name"] == HOSTILE_NAME
    rows = list(
        csv.DictReader(io.StringIO(s3.get_object(Bucket=reported["bucket"], Key=keys[1])["Body"].read().decode()))
    )
    assert len(rows) == 8


def test_the_command_fetches_the_newest_report_and_opens_it(
    aws: LocalStack, reported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(parity_report.webbrowser, "open", lambda url: opened.append(url) or True)

    done = CliRunner().invoke(app, ["parity", "report", "--run", reported["run"], "--out", str(tmp_path), "--open"])

    assert done.exit_code == 0, done.output
    html = tmp_path / f"{reported['run']}.html"
    s3 = aws.client("s3")
    stored = s3.get_object(Bucket=reported["bucket"], Key=reported["written"]["html_key"])["Body"].read()
    assert html.read_bytes() == stored
    assert opened == [html.resolve().as_uri()]
    assert "completed with errors: 1 failed, 1 skipped" in done.output and "from S3" in done.output
    assert json.loads((tmp_path / f"{reported['run']}.json").read_text())["parity_run_id"] == reported["run"]


def test_without_the_step_the_command_builds_the_report_from_the_ledger(aws: LocalStack, tmp_path: Path) -> None:
    seeded = seed_run(aws, uuid.uuid4().hex[:8], report_step=False)

    # by id: S3's LastModified has one-second resolution, and the module's other run may share this one's second
    done = CliRunner().invoke(app, ["parity", "report", "--run", seeded["run"], "--out", str(tmp_path)])

    assert done.exit_code == 0, done.output
    assert "built from the ledger" in done.output
    document = json.loads((tmp_path / f"{seeded['run']}.json").read_text())
    assert document["summary"]["customers_checked"] == 12 and document["summary"]["customers_failed"] == 1
    assert "cus_grants_" in (tmp_path / f"{seeded['run']}.html").read_text()
    assert len((tmp_path / f"{seeded['run']}.csv").read_text().splitlines()) == 9


def test_an_unknown_run_is_refused_by_name(aws: LocalStack, tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["parity", "report", "--run", "parity-nobody", "--out", str(tmp_path)])

    assert done.exit_code == 2 and "parity-nobody" in done.output
    assert list(tmp_path.iterdir()) == []


def test_the_step_run_again_rewrites_the_same_report(local_stack: LocalStack, reported: dict[str, Any]) -> None:
    """A retried or redriven report step (no vendor write, three whole-object puts) leaves one report, the same."""
    s3, bucket, key = local_stack.client("s3"), reported["bucket"], reported["written"]["json_key"]
    before = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    again = local_stack.client("lambda").invoke(
        FunctionName="billmig-parity-report-local", Payload=json.dumps({"parity_run_id": reported["run"]})
    )

    assert json.loads(again["Payload"].read())["counts"] == reported["written"]["counts"]
    after = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert {k: v for k, v in after.items() if k != "generated_at"} == {
        k: v for k, v in before.items() if k != "generated_at"
    }
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"parity/{reported['run']}/")["Contents"]
    names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed)
    assert names == ["customers.json", "report.csv", "report.html", "report.json"]
