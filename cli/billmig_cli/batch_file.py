"""Reading a batch file: every problem reported at once, naming the file, the record and the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billmig.batch import BATCH_ID, BatchCustomer, parse_customer
from billmig.errors import InvalidCustomerRecord


class BatchFileError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class BatchFile:
    batch_id: str
    customers: list[BatchCustomer]


def load_batch_file(path: Path, *, batch_id: str | None = None) -> BatchFile:
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BatchFileError([f"{path}: no such file"]) from exc
    except json.JSONDecodeError as exc:
        raise BatchFileError([f"{path}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]) from exc
    records: Any
    file_batch_id: Any
    if isinstance(raw, list):
        records, file_batch_id = raw, None
    elif isinstance(raw, dict):
        records, file_batch_id = raw.get("customers"), raw.get("batch_id")
    else:
        raise BatchFileError([f"{path}: expected an object with batch_id and customers, or a list of customers"])
    problems: list[str] = []
    chosen = batch_id or file_batch_id
    if not isinstance(chosen, str) or not re.match(BATCH_ID, chosen):
        problems.append(f"{path}: batch_id {chosen!r} must match {BATCH_ID} (set it in the file or with --batch-id)")
    if not isinstance(records, list) or not records:
        problems.append(f"{path}: customers must be a non-empty list")
        raise BatchFileError(problems)
    customers: list[BatchCustomer] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(f"{path} record {index}: expected an object, got {type(record).__name__}")
            continue
        try:
            customer = parse_customer(record, source=str(path), index=index)
        except InvalidCustomerRecord as exc:
            problems.append(str(exc))
            continue
        if customer.customer_id in seen:
            problems.append(
                f"{path} record {index} ({customer.customer_id}): duplicate of record {seen[customer.customer_id]}"
            )
            continue
        seen[customer.customer_id] = index
        customers.append(customer)
    if problems:
        raise BatchFileError(problems)
    assert isinstance(chosen, str)
    return BatchFile(batch_id=chosen, customers=customers)
