"""What the Stigg import tests share: the guide's examples, and running an import the way the CLI does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billmig_cli import stigg_import as runner

GUIDE = Path(__file__).parent / "guide_examples"


def without_comments(text: str) -> str:
    """What an operator does to the guide's examples: drop `//` comments and trailing commas."""
    text = re.sub(r"\s*//[^\n]*", "", text)
    return re.sub(r",(\s*[\]}])", r"\1", text)


Write = Callable[[str, str, list[dict[str, Any]]], Path]


def run_import(
    files: runner.ImportFiles, import_id: str, tmp_path: Path, paid_plans: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start, follow to the end, and fetch the report: what `billmig stigg import` does."""
    started = runner.start_import(files, import_id=import_id, paid_plan_ids=paid_plans, stack_name="billmig")
    result = runner.follow(started, stack_name="billmig", timeout=300)
    assert result["status"] == "SUCCEEDED", runner.failure_of(result)
    report, _, _ = runner.fetch_report(import_id, stack_name="billmig", report_dir=tmp_path / "reports")
    return result, report


def subscription_entitlements(stigg: Any, subscription_id: str) -> dict[str, float | None]:
    """A subscription's own entitlements, read with a query built on the SDK's schema (just the fields needed)."""
    import stigg.generated.schema as schema
    from sgqlc.operation import Operation
    from sgqlc.types import Arg, Variable, non_null

    op = Operation(schema.Query, variables={"input": Arg(non_null(schema.GetSubscriptionInput))})
    op.get_subscription(input=Variable("input")).subscription_entitlements().__fields__("feature_id", "usage_limit")
    result = stigg.request(op, {"input": {"subscriptionId": subscription_id}})
    return {e.feature_id: e.usage_limit for e in result.get_subscription.subscription_entitlements}
