"""`billmig parity report`: a parity run's report on this machine, fetched from S3 or, when the run's report step has
not written one (still running, or failed), built from the ledger with the same domain code the step runs.

The newest run is the one whose customer list (`parity/<run id>/customers.json`, written when the run starts) is the
newest; the files land in the output folder as `<run id>.json`, `.csv` and `.html`.
"""

from __future__ import annotations

import json
import webbrowser
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
from billmig.adapters.dynamodb_progress import DynamoDBProgressStore
from billmig.adapters.s3_import_storage import S3ImportStorage
from billmig.parity.report import report_as_csv
from billmig.parity.report_page import report_as_html
from billmig.parity.run import ParityReportRequest
from billmig.parity.run_report import collect_report, report_keys

from billmig_cli import aws_target

RUNS_PREFIX = "parity/"
CUSTOMERS_FILE = "customers.json"


class NoParityRun(Exception):
    """No parity run (or not the one named) has started in this stack."""


@dataclass(frozen=True)
class LocalReport:
    parity_run_id: str
    source: str  # "fetched from S3" or "built from the ledger"
    document: dict[str, Any]
    json_path: Path
    csv_path: Path
    html_path: Path


def newest_run(s3: Any, bucket: str) -> str:
    newest: tuple[datetime, str] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RUNS_PREFIX):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/")
            if len(parts) == 3 and parts[2] == CUSTOMERS_FILE and (newest is None or item["LastModified"] > newest[0]):
                newest = (item["LastModified"], parts[1])
    if newest is None:
        raise NoParityRun(f"no parity run has started: nothing under s3://{bucket}/{RUNS_PREFIX}")
    return newest[1]


def _exists(s3: Any, bucket: str, key: str) -> bool:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return any(item["Key"] == key for item in listed)


def fetch_report(run: str | None, out_dir: Path, *, stack_name: str) -> LocalReport:
    outputs = aws_target.stack_outputs(stack_name)
    bucket = outputs["ImportBucketName"]
    s3 = aws_target.client("s3")
    run_id = run or newest_run(s3, bucket)
    json_key, csv_key, html_key = report_keys(run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / f"{run_id}.json", out_dir / f"{run_id}.csv", out_dir / f"{run_id}.html")
    if _exists(s3, bucket, json_key):
        for key, path in zip((json_key, csv_key, html_key), paths, strict=True):
            path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        document = json.loads(paths[0].read_text())
        source = "fetched from S3"
    else:
        if not _exists(s3, bucket, f"{RUNS_PREFIX}{run_id}/{CUSTOMERS_FILE}"):
            raise NoParityRun(f"no parity run {run_id!r} in s3://{bucket}/{RUNS_PREFIX}")
        table = outputs["ProgressTableName"]
        dynamodb = aws_target.client("dynamodb")
        report = collect_report(
            ParityReportRequest(parity_run_id=run_id),
            S3ImportStorage(bucket, client=s3),
            DynamoDBProgressStore(table, client=dynamodb),
            DynamoDBParityLedger(table, client=dynamodb),
            aws_target.world_now,
        )
        document = report.model_dump(mode="json")
        paths[0].write_text(json.dumps(document, indent=2) + "\n")
        paths[1].write_text(report_as_csv(report))
        paths[2].write_text(report_as_html(report))
        source = "built from the ledger"
    return LocalReport(run_id, source, document, *paths)


def open_in_browser(path: Path) -> bool:
    return webbrowser.open(path.resolve().as_uri())
