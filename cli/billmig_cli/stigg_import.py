"""`billmig stigg import`: check the files here, hand them to the import state machine, follow it, fetch the report.

Flags follow Stigg's own `@stigg/bulk-import` CLI. Files are checked before anything is uploaded, so a bad file
starts nothing; the state machine checks them again (it is the one that must never trust its input).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billmig.stigg.errors import InvalidImportFile
from billmig.stigg.import_storage import input_key, report_keys
from billmig.stigg.record_files import FileProblem, RecordKind, load_records

from billmig_cli import aws_target, executions

STIGG_KEY_VARIABLE = "STIGG_SERVER_API_KEY"  # the name Stigg's guide uses


@dataclass
class ImportFiles:
    customers: Path | None = None
    subscriptions: list[Path] = field(default_factory=list)
    usage: Path | None = None

    def by_kind(self) -> list[tuple[RecordKind, Path]]:
        found: list[tuple[RecordKind, Path]] = []
        if self.customers:
            found.append((RecordKind.CUSTOMERS, self.customers))
        found.extend((RecordKind.SUBSCRIPTIONS, p) for p in self.subscriptions)
        if self.usage:
            found.append((RecordKind.USAGE, self.usage))
        return found


class ImportRefused(Exception):
    def __init__(self, problems: Sequence[FileProblem | str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


def check_files(files: ImportFiles) -> dict[str, int]:
    """Every record of every file, or `ImportRefused` with every problem of every file at once."""
    problems: list[FileProblem | str] = []
    counts: dict[str, int] = {}
    for kind, path in files.by_kind():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read ({exc})")
            continue
        try:
            records = load_records(kind, text, file_name=path.name)
        except InvalidImportFile as exc:
            problems.extend(p for p in exc.problems if isinstance(p, FileProblem))
            continue
        counts[kind.value] = counts.get(kind.value, 0) + len(records)
    if not files.by_kind():
        problems.append("nothing to import: give --customers-file, --subscriptions-file or --usage-file")
    if problems:
        raise ImportRefused(problems)
    return counts


def new_import_id() -> str:
    return "stigg-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def store_stigg_key(secret_name: str) -> bool:
    """Copy `STIGG_SERVER_API_KEY` into the stack's secret, so the functions read it from Secrets Manager."""
    key = os.environ.get(STIGG_KEY_VARIABLE)
    if not key:
        return False
    secrets = aws_target.client("secretsmanager")
    try:
        secrets.put_secret_value(SecretId=secret_name, SecretString=key)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=secret_name, SecretString=key, Description="Stigg server API key (billmig)")
    return True


@dataclass
class StartedImport:
    import_id: str
    execution_arn: str
    records: int


def start_import(files: ImportFiles, *, import_id: str, paid_plan_ids: Sequence[str], stack_name: str) -> StartedImport:
    counts = check_files(files)
    outputs = aws_target.stack_outputs(stack_name)
    bucket = outputs["ImportBucketName"]
    store_stigg_key(outputs["StiggApiKeySecretName"])
    s3 = aws_target.client("s3")
    keys: dict[str, list[str]] = {"customers_keys": [], "subscriptions_keys": [], "usage_keys": []}
    for index, (kind, path) in enumerate(files.by_kind()):
        key = input_key(import_id, kind.value, index, path.name)
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="application/json")
        keys[f"{kind.value}_keys"].append(key)
    payload = {"import_id": import_id, **keys, "paid_plan_ids": list(paid_plan_ids)}
    # A rerun of the same import (to resume it) is a new execution of the same import id.
    name = executions.execution_name(import_id, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f"))
    arn = executions.start(aws_target.client("stepfunctions"), outputs["StiggImportStateMachineArn"], payload, name)
    return StartedImport(import_id=import_id, execution_arn=arn, records=sum(counts.values()))


def records_done(import_id: str, stack_name: str) -> int:
    """How many records the progress store already holds an outcome for: bulk records by chunk, paid plans."""
    from billmig.adapters.dynamodb_chunk_progress import DynamoDBChunkProgressStore
    from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

    table = aws_target.stack_outputs(stack_name)["ProgressTableName"]
    client = aws_target.client("dynamodb")
    bulk = DynamoDBChunkProgressStore(table, client=client).records_done(import_id)
    return bulk + DynamoDBProgressStore(table, client=client).count_in_run(import_id)


def follow(
    started: StartedImport,
    *,
    stack_name: str,
    on_progress: Callable[[int], None] = lambda _done: None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    sfn = aws_target.client("stepfunctions")
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        description: dict[str, Any] = sfn.describe_execution(executionArn=started.execution_arn)
        on_progress(records_done(started.import_id, stack_name))
        if description["status"] != "RUNNING":
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{started.execution_arn} still RUNNING after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def failure_of(description: dict[str, Any]) -> str:
    cause = description.get("cause") or ""
    try:
        payload = json.loads(cause)
        cause = payload.get("errorMessage", cause) if isinstance(payload, dict) else cause
    except ValueError:
        pass
    return f"{description.get('error', 'failed')}: {cause}"


def fetch_report(import_id: str, *, stack_name: str, report_dir: Path) -> tuple[dict[str, Any], Path, Path]:
    bucket = aws_target.stack_outputs(stack_name)["ImportBucketName"]
    s3 = aws_target.client("s3")
    json_key, csv_key = report_keys(import_id)
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = report_dir / f"{import_id}.json", report_dir / f"{import_id}.csv"
    report = json.loads(s3.get_object(Bucket=bucket, Key=json_key)["Body"].read())
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    csv_text = s3.get_object(Bucket=bucket, Key=csv_key)["Body"].read().decode()
    csv_path.write_text(csv_text)
    list(csv.reader(io.StringIO(csv_text)))  # a report that does not parse is a defect, not a partial result
    return report, json_path, csv_path


def resume_command(import_id: str) -> str:
    """What the operator reruns: the same files with the same import id (settled records are not sent again)."""
    return f"billmig stigg import <the same files and flags> --import-id {import_id}"


def failed_rows(report: dict[str, Any], limit: int = 20) -> list[str]:
    rows = [r for r in report["rows"] if r["outcome"] == "failed" and r["entity"] != "chunks"]
    named = [f"{r['entity']} {r['record']}: {r['detail']}" for r in rows[:limit]]
    if len(rows) > limit:
        named.append(f"... and {len(rows) - limit} more (see the report)")
    return named


STRIPE_KEY_VARIABLE = "STRIPE_API_KEY"


def files_from_stripe(
    config: Path, out_dir: Path, *, api_key: str, api_base: str | None
) -> tuple[ImportFiles, list[str]]:
    """Build the guide's three files from Stripe, write them where the operator can read them, and name the paid
    plans; the import then treats them exactly like hand-written files."""
    from billmig.adapters.stripe_sdk import StripeSDKSource
    from billmig.stigg.stripe_mapping import StripeMapping, records_from_stripe
    from pydantic import ValidationError

    try:
        mapping = StripeMapping.model_validate_json(config.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise ImportRefused([f"{config}: {exc}"]) from exc
    records = records_from_stripe(StripeSDKSource.connect(api_key, api_base), mapping)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, root in (
        ("customers.json", "customers"),
        ("subscriptions.json", "subscriptions"),
        ("usage.json", "usages"),
    ):
        paths[root] = out_dir / name
        paths[root].write_text(json.dumps({root: records[root]}, indent=2) + "\n")
    files = ImportFiles(
        customers=paths["customers"] if records["customers"] else None,
        subscriptions=[paths["subscriptions"]] if records["subscriptions"] else [],
        usage=paths["usages"] if records["usages"] else None,
    )
    return files, mapping.paid_plans
