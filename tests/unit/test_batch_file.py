"""A Metronome migration batch file (`billmig metronome plan|start --batch`): every problem at once, naming the file,
the record and the field, before anything is read from a vendor."""

import json
from pathlib import Path

import pytest
from billmig.metronome.errors import InvalidMigrationConfig
from billmig_cli.metronome_migration import load_batch


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, {"batch_id": "wave-1", "customers": [{"stripe_customer_id": "cus_AAAA1"}]})
    batch = load_batch(path)
    assert batch.batch_id == "wave-1"
    assert batch.customer_ids == ["cus_AAAA1"]


def test_every_problem_is_reported_at_once_naming_file_record_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "batch_id": "wave 1",
            "customers": [
                {"stripe_customer_id": "cus_AAAA1"},
                {"stripe_customer_id": "nope"},
                {"stripe_customer_id": "cus_BBBB2", "plan": "pro"},
                {"stripe_customer_id": "cus_AAAA1"},
                "cus_CCCC5",
            ],
        },
    )
    with pytest.raises(InvalidMigrationConfig) as caught:
        load_batch(path)
    problems = caught.value.problems
    assert len(problems) == 5
    assert f"{path}: batch_id: 'wave 1' must match" in problems[0]
    assert f"{path}: customers.1.stripe_customer_id: 'nope' is not a Stripe customer id" in problems[1]
    assert f"{path}: customers.2: unknown keys ['plan']" in problems[2]
    assert f"{path}: customers.3 (cus_AAAA1): duplicate of customers.0" in problems[3]
    assert f"{path}: customers.4.stripe_customer_id: None is not a Stripe customer id" in problems[4]


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{"batch_id": "w",\n "customers": [,]}')
    with pytest.raises(InvalidMigrationConfig, match=r"not JSON \(line 2, column 16\)"):
        load_batch(path)


def test_a_file_without_customers_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidMigrationConfig, match="customers: must be a non-empty list"):
        load_batch(write(tmp_path, {"batch_id": "w", "customers": []}))
