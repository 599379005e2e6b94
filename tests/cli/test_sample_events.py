"""The sample inputs in `events/` stay valid: operators copy them."""

from pathlib import Path

from billmig.preflight import PreflightRequest
from billmig_cli.batch_file import load_batch_file
from conftest import REPO


def test_the_sample_batch_file_loads() -> None:
    assert len(load_batch_file(REPO / "events" / "preflight-batch.json").customers) == 3


def test_the_sample_task_event_parses() -> None:
    event = PreflightRequest.model_validate_json((REPO / "events" / "preflight-task.json").read_text())
    assert event.customer["internal_customer_id"] == "acct-1001"
    assert Path(REPO / "events").is_dir()
