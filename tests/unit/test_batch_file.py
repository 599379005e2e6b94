import json
from pathlib import Path

import pytest
from billmig_cli.batch_file import BatchFileError, load_batch_file


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "batch_id": "wave-1",
            "customers": [
                {"stripe_customer_id": "cus_AAAA1", "internal_customer_id": "acct-1"},
            ],
        },
    )
    batch = load_batch_file(path)
    assert batch.batch_id == "wave-1"
    assert batch.customers[0].internal_customer_id == "acct-1"


def test_every_problem_is_reported_at_once_naming_file_record_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "batch_id": "wave 1",
            "customers": [
                {"stripe_customer_id": "cus_AAAA1", "internal_customer_id": "acct-1"},
                {"stripe_customer_id": "cus_BBBB2"},
                {"stripe_customer_id": "nope", "internal_customer_id": "acct-3", "plan": "pro"},
                {"stripe_customer_id": "cus_AAAA1", "internal_customer_id": "acct-4"},
                "cus_CCCC5",
            ],
        },
    )
    with pytest.raises(BatchFileError) as caught:
        load_batch_file(path)
    problems = caught.value.problems
    assert len(problems) == 5
    assert "batch_id 'wave 1' must match" in problems[0]
    assert f"{path} record 1 (cus_BBBB2): internal_customer_id: Field required" in problems[1]
    assert f"{path} record 2 (nope): stripe_customer_id: String should match pattern" in problems[2]
    assert "plan: Extra inputs are not permitted" in problems[2]
    assert f"{path} record 3 (cus_AAAA1): duplicate of record 0" in problems[3]
    assert f"{path} record 4: expected an object, got str" in problems[4]


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{"batch_id": "w",\n "customers": [,]}')
    with pytest.raises(BatchFileError, match=r"not JSON \(line 2, column 16\)"):
        load_batch_file(path)
