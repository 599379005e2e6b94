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


def test_the_sample_stigg_files_and_execution_input_are_valid() -> None:
    from billmig.stigg.import_preparation import ImportRequest
    from billmig.stigg.stripe_mapping import StripeMapping
    from billmig_cli.stigg_import import ImportFiles, check_files

    stigg = REPO / "events" / "stigg"
    files = ImportFiles(
        customers=stigg / "customers.json",
        subscriptions=[stigg / f"{kind}-subscriptions.json" for kind in ("free", "custom", "paid")],
        usage=stigg / "usage.json",
    )
    assert check_files(files) == {"customers": 3, "subscriptions": 3, "usage": 2}
    request = ImportRequest.model_validate_json((stigg / "import-execution.json").read_text())
    assert request.paid_plan_ids == ["plan-growth"]
    mapping = StripeMapping.model_validate_json((stigg / "stripe-to-stigg.json").read_text())
    assert mapping.prices["growth_monthly"].plan == "plan-growth"
