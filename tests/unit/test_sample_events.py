"""The sample inputs in `events/` stay valid: operators copy them, and `sam local invoke -e` takes them."""

import importlib.util
import json
from typing import Any

import pytest
from suite import REPO

FUNCTION_DIRS = sorted(p.parent.name for p in (REPO / "functions").glob("*/app.py"))


def _handler(function_dir: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"handler_{function_dir}", REPO / "functions" / function_dir / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.mark.parametrize("function_dir", FUNCTION_DIRS)
def test_every_function_has_a_sample_event_its_handler_accepts(function_dir: str) -> None:
    event = REPO / "events" / f"{function_dir}.json"
    assert event.is_file(), f"events/{function_dir}.json: a sample event for `sam local invoke -e`"
    _handler(function_dir).event_model.model_validate(json.loads(event.read_text()))


def test_every_top_level_event_names_a_function() -> None:
    assert sorted(p.stem for p in (REPO / "events").glob("*.json")) == FUNCTION_DIRS


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
    request = ImportRequest.model_validate_json((REPO / "events" / "stigg_prepare_import.json").read_text())
    assert request.paid_plan_ids == ["plan-growth"]
    mapping = StripeMapping.model_validate_json((stigg / "stripe-to-stigg.json").read_text())
    assert mapping.prices["growth_monthly"].plan == "plan-growth"
