"""`billmig local seed stigg`: the shared catalogue, written through the SDK, read back through the SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sgqlc.types
from billmig_cli.main import app
from billmig_local.catalogue import STANDARD
from billmig_local.clock import WorldClock
from billmig_local.emulators.server import RunningEmulator
from billmig_local.emulators.stigg import catalogue_operations as ops
from billmig_local.emulators.stigg import start
from sgqlc.operation import Operation
from stigg import Stigg, StiggClient
from stigg.generated import schema as sdk
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[RunningEmulator, StiggClient]]:
    emulator = start(clock=WorldClock(), state_dir=None)
    try:
        result = CliRunner().invoke(app, ["local", "seed", "stigg", "--url", emulator.url, "--api-key", "k"])
        assert result.exit_code == 0, result.output
        assert "plans: 3 created" in result.output
        yield emulator, Stigg.create_client("k", api_url=emulator.url, enable_edge=False)
    finally:
        emulator.server.stop()


def plan(client: StiggClient, ref_id: str):
    op = Operation(
        sdk.schema.query_type,
        name="SeededPlan",
        variables={"input": sgqlc.types.Arg(sgqlc.types.non_null(sdk.GetPackageByRefIdInput))},
    )
    selection = op.get_plan_by_ref_id(input=sgqlc.types.Variable("input"))
    selection.__fields__("ref_id", "status", "pricing_type")
    selection.product().__fields__("ref_id", "multiple_subscriptions")
    selection.prices().__fields__("billing_model", "billing_period", "price")
    selection.entitlements().__fields__("feature_id", "has_unlimited_usage", "reset_period")
    environment_id = client.request(ops.current_environment(), {}).current_environment
    return client.request(op, {"input": {"refId": ref_id, "environmentId": environment_id}}).get_plan_by_ref_id


def test_paid_plan_carries_the_licensed_monthly_price(seeded) -> None:
    _emulator, client = seeded
    [licensed] = STANDARD.plans
    growth = plan(client, licensed.stigg_plan_id)
    assert (growth.status, growth.pricing_type, growth.product.ref_id) == ("PUBLISHED", "PAID", "product-platform")
    [price] = growth.prices
    assert (price.billing_model, price.billing_period) == ("FLAT_FEE", "MONTHLY")
    assert (round(price.price.amount * 100), price.price.currency) == (licensed.monthly_amount, "USD")
    granted = {e.feature_id for e in growth.entitlements}
    assert granted >= set(licensed.included_features) | {o.stigg_feature_id for o in STANDARD.metered}


def test_free_and_custom_plans(seeded) -> None:
    _emulator, client = seeded
    free = plan(client, STANDARD.stigg.free_plan_id)
    assert (free.pricing_type, free.prices) == ("FREE", [])
    assert {e.feature_id for e in free.entitlements} == {o.stigg_feature_id for o in STANDARD.metered}
    custom = plan(client, STANDARD.stigg.custom_plan_id)
    assert (custom.pricing_type, custom.entitlements) == ("CUSTOM", [])


def test_features_by_kind(seeded) -> None:
    _emulator, client = seeded
    op = Operation(sdk.schema.query_type, name="SeededFeatures")
    op.features(paging={"first": 50}).edges().node().__fields__("ref_id", "feature_type", "meter_type", "has_meter")
    nodes = {e.node.ref_id: e.node for e in client.request(op, {}).features.edges}
    kinds = {ref: (n.feature_type, n.meter_type, n.has_meter) for ref, n in nodes.items()}
    assert kinds == {
        "feature-sso": ("BOOLEAN", "None", False),
        "feature-seats": ("NUMBER", "None", False),
        "feature-api-calls": ("NUMBER", "Incremental", False),
        "feature-compute-minutes": ("NUMBER", "Incremental", False),
        "feature-storage-gb": ("NUMBER", "Fluctuating", False),
        "feature-audit-log-events": ("NUMBER", "Incremental", True),
    }


def test_reseeding_creates_nothing(seeded) -> None:
    emulator, _client = seeded
    result = CliRunner().invoke(app, ["local", "seed", "stigg", "--url", emulator.url, "--api-key", "k"])
    assert result.exit_code == 0, result.output
    assert "plans: 0 created" in result.output and "features: 0 created" in result.output
