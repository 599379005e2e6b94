"""Helpers for the Stigg emulator tests: a running emulator, its clock, and the official SDK client pointed at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sgqlc.types
from billmig_local.clock import WorldClock
from billmig_local.emulators.server import RunningEmulator
from billmig_local.emulators.stigg import catalogue_operations as ops
from billmig_local.emulators.stigg import start
from billmig_local.emulators.stigg.environment import Environment
from billmig_local.emulators.stigg.sgqlc_fragments import include_fragments_in_inline_fragments
from sgqlc.operation import GraphQLErrors, Operation
from stigg import Stigg, StiggClient
from stigg.generated import schema as sdk

include_fragments_in_inline_fragments()

API_KEY = "test-key"
JAN_1 = datetime(2030, 1, 1, tzinfo=UTC)
"""Tests that move the clock live in 2030: always in the future of the real clock, so `clock.set` can reach it."""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class World:
    emulator: RunningEmulator
    clock: WorldClock
    client: StiggClient
    state_dir: Path

    @property
    def env(self) -> Environment:
        environment: Environment = self.emulator.extra["environment"]
        return environment

    @property
    def graphql_url(self) -> str:
        return f"{self.emulator.url}/graphql"

    def stop(self) -> None:
        self.emulator.server.stop()
        self.emulator.extra["store"].close()


def start_world(state_dir: Path, clock: WorldClock | None = None) -> World:
    clock = clock or WorldClock()
    emulator = start(clock=clock, state_dir=state_dir)
    client = Stigg.create_client(API_KEY, api_url=f"{emulator.url}/graphql", enable_edge=False)
    return World(emulator, clock, client, state_dir)


def error_codes(excinfo: Any) -> list[str]:
    """The `extensions.code` of each GraphQL error the SDK raised."""
    errors: GraphQLErrors = excinfo.value
    return [e.get("extensions", {}).get("code") for e in errors.errors]


def import_customers(client: StiggClient, *customers: dict[str, Any]) -> str:
    rows = [{"email": None, "name": None, **c} for c in customers]
    reply = client.request(Stigg.mutation.import_customer_bulk, {"input": {"customers": rows}})
    task_id: str = reply.import_customers_bulk
    return task_id


def import_subscriptions(client: StiggClient, *subscriptions: dict[str, Any]) -> str:
    reply = client.request(Stigg.mutation.import_subscriptions_bulk, {"input": {"subscriptions": list(subscriptions)}})
    task_id: str = reply.import_subscriptions_bulk
    return task_id


def report_usage(client: StiggClient, *usages: dict[str, Any]) -> Any:
    return client.request(Stigg.mutation.report_usage_bulk, {"input": {"usages": list(usages)}}).report_usage_bulk


def subscription_details() -> Operation:
    """`getSubscription` with what the SDK's fragment leaves out: per-subscription entitlements, add-on ids, dates."""
    op = Operation(
        sdk.schema.query_type,
        name="SubscriptionDetails",
        variables={"input": sgqlc.types.Arg(sgqlc.types.non_null(sdk.GetSubscriptionInput))},
    )
    selection = op.get_subscription(input=sgqlc.types.Variable("input"))
    selection.__fields__(
        "subscription_id", "status", "start_date", "end_date", "additional_meta_data", "billing_period", "pricing_type"
    )
    selection.subscription_entitlements().__fields__("feature_id", "usage_limit", "has_unlimited_usage")
    selection.addons().__fields__("addon_id", "quantity")
    selection.resource().__fields__("resource_id")
    selection.plan().__fields__("ref_id")
    return op


def create_product(client: StiggClient, ref_id: str, *, multiple_subscriptions: bool) -> str:
    """A product of the test's own (the shared catalogue has one single-subscription product)."""
    environment_id = client.request(ops.current_environment(), {}).current_environment
    product = {
        "refId": ref_id,
        "displayName": ref_id,
        "environmentId": environment_id,
        "multipleSubscriptions": multiple_subscriptions,
    }
    product_id: str = client.request(ops.create_product(), {"input": {"product": product}}).create_one_product.id
    return product_id


def create_free_plan(client: StiggClient, product_id: str, ref_id: str) -> None:
    environment_id = client.request(ops.current_environment(), {}).current_environment
    new = {
        "refId": ref_id,
        "displayName": ref_id,
        "productId": product_id,
        "pricingType": "FREE",
        "environmentId": environment_id,
    }
    plan_id = client.request(ops.create_plan(), {"input": new}).create_one_plan.id
    entitlements = [{"feature": {"featureId": "feature-api-calls", "hasUnlimitedUsage": True, "resetPeriod": "MONTH"}}]
    client.request(
        ops.create_package_entitlements(),
        {"input": {"packageId": plan_id, "environmentId": environment_id, "entitlements": entitlements}},
    )
    client.request(
        ops.set_package_pricing(),
        {"input": {"packageId": plan_id, "environmentId": environment_id, "pricingType": "FREE"}},
    )
    client.request(ops.publish_plan(), {"input": {"id": plan_id, "migrationType": "NEW_CUSTOMERS"}})
