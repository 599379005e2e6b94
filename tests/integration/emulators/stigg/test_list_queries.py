"""Stigg's paged list queries through the official SDK: `customers`, `subscriptions` (the SDK's own `GetSubscriptions`
document) and `importIntegrationTasks`: filters on ids, cursor paging, the page size limit, limits, one environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sgqlc.types
from billmig_local.clock import WorldClock
from billmig_local.emulators.stigg.seed import seed_catalogue
from sgqlc.operation import GraphQLErrors, Operation
from stigg import Stigg, StiggClient
from stigg.generated import schema as sdk
from stigg_world import (
    JAN_1,
    World,
    error_codes,
    import_customers,
    import_subscriptions,
    start_world,
    unique,
)


def list_customers() -> Operation:
    """`customers(filter, paging, sorting)` on the SDK's schema types (the SDK ships no document for it)."""
    op = Operation(
        sdk.schema.query_type,
        name="ListCustomers",
        variables={
            "filter": sgqlc.types.Arg(sdk.CustomerFilter),
            "paging": sgqlc.types.Arg(sdk.CursorPaging),
            "sorting": sgqlc.types.Arg(sgqlc.types.list_of(sgqlc.types.non_null(sdk.CustomerSort))),
        },
    )
    page = op.customers(
        filter=sgqlc.types.Variable("filter"),
        paging=sgqlc.types.Variable("paging"),
        sorting=sgqlc.types.Variable("sorting"),
    )
    page.total_count()
    page.edges().cursor()
    page.edges().node().__fields__("id", "customer_id", "email", "environment_id")
    page.page_info().__fields__("has_next_page", "has_previous_page", "start_cursor", "end_cursor")
    return op


def list_import_tasks() -> Operation:
    op = Operation(
        sdk.schema.query_type,
        name="ImportTasks",
        variables={"filter": sgqlc.types.Arg(sdk.ImportIntegrationTaskFilter)},
    )
    node = op.import_integration_tasks(filter=sgqlc.types.Variable("filter")).edges().node()
    node.__fields__("id", "task_type", "status", "progress", "total_subtasks_count", "customers_count")
    node.import_errors().__fields__("id", "error")
    return op


LIST_CUSTOMERS = list_customers()
IMPORT_TASKS = list_import_tasks()


def customers_page(client: StiggClient, **variables: Any) -> Any:
    return client.request(LIST_CUSTOMERS, variables).customers


def subscriptions_page(client: StiggClient, **variables: Any) -> Any:
    return client.request(Stigg.query.get_subscriptions, variables).subscriptions


def all_pages(fetch: Any, first: int, **variables: Any) -> list[list[Any]]:
    """Follow `endCursor` until `hasNextPage` is false; each page's nodes."""
    pages, paging = [], {"first": first}
    while True:
        page = fetch(paging=paging, **variables)
        pages.append([edge.node for edge in page.edges])
        if not page.page_info.has_next_page:
            return pages
        paging = {"first": first, "after": page.page_info.end_cursor}


@pytest.fixture(scope="module")
def chunk(world: World) -> list[str]:
    """23 customers of this module's own, each with a free subscription."""
    ids = [unique("list") for _ in range(23)]
    import_customers(world.client, *({"customerId": c, "email": f"{c}@example.com"} for c in ids))
    import_subscriptions(
        world.client, *({"customerId": c, "planId": "plan-free", "subscriptionId": f"sub-{c}"} for c in ids)
    )
    return ids


def test_customers_filter_on_ids_answers_exactly_those_customers(world: World, chunk: list[str]) -> None:
    asked = [*chunk[:5], "no-such-customer"]
    page = customers_page(world.client, filter={"customerId": {"in": asked}}, paging={"first": 50})
    assert sorted(edge.node.customer_id for edge in page.edges) == sorted(chunk[:5])
    assert page.total_count == 5
    assert not page.page_info.has_next_page
    one = customers_page(world.client, filter={"customerId": {"eq": chunk[7]}})
    assert [edge.node.email for edge in one.edges] == [f"{chunk[7]}@example.com"]


def test_customers_page_by_cursor_in_the_sort_order_without_gaps_or_repeats(world: World, chunk: list[str]) -> None:
    pages = all_pages(
        lambda **v: customers_page(world.client, **v),
        first=5,
        filter={"customerId": {"in": chunk}},
        sorting=[{"field": "customerId", "direction": "ASC"}],
    )
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [n.customer_id for p in pages for n in p] == sorted(chunk)
    second = customers_page(
        world.client,
        filter={"customerId": {"in": chunk}},
        paging={
            "first": 5,
            "after": customers_page(
                world.client, filter={"customerId": {"in": chunk}}, paging={"first": 5}
            ).page_info.end_cursor,
        },
    )
    assert second.page_info.has_previous_page and second.page_info.has_next_page
    backwards = customers_page(
        world.client,
        filter={"customerId": {"in": chunk}},
        paging={"last": 3, "before": second.edges[0].cursor},
        sorting=[{"field": "customerId", "direction": "ASC"}],
    )
    assert len(backwards.edges) == 3


def test_page_size_above_the_limit_is_refused_with_nestjs_querys_message(world: World) -> None:
    with pytest.raises(GraphQLErrors) as refused:
        customers_page(world.client, paging={"first": 51})
    assert error_codes(refused) == ["BadUserInput"]
    assert "paging.first max allowed value is `50`" in str(refused.value.errors[0]["message"])
    with pytest.raises(GraphQLErrors) as refused_sdk:
        subscriptions_page(world.client, paging={"first": 1000})
    assert error_codes(refused_sdk) == ["BadUserInput"]
    assert len(customers_page(world.client, paging={"first": 50}).edges) <= 50


def test_a_bad_cursor_and_an_unsupported_filter_are_refused_not_ignored(world: World, chunk: list[str]) -> None:
    with pytest.raises(GraphQLErrors) as bad_cursor:
        customers_page(world.client, paging={"first": 5, "after": "not-a-cursor"})
    assert error_codes(bad_cursor) == ["BadUserInput"]
    with pytest.raises(GraphQLErrors) as unsupported:
        customers_page(world.client, filter={"crmId": {"eq": "x"}})
    assert error_codes(unsupported) == ["UnsupportedParameter"]


def test_subscriptions_through_the_sdks_own_document_filter_on_customer_ids_and_status(
    world: World, chunk: list[str]
) -> None:
    by_customer = {"customer": {"customerId": {"in": chunk[:12]}}, "status": {"in": ["ACTIVE", "IN_TRIAL"]}}
    pages = all_pages(lambda **v: subscriptions_page(world.client, **v), first=5, filter=by_customer)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sorted(n.customer.customer_id for p in pages for n in p) == sorted(chunk[:12])
    by_id = subscriptions_page(world.client, filter={"subscriptionId": {"in": [f"sub-{chunk[0]}", "sub-none"]}})
    assert [(n.node.subscription_id, n.node.plan.plan_id) for n in by_id.edges] == [(f"sub-{chunk[0]}", "plan-free")]
    canceled = subscriptions_page(world.client, filter={**by_customer, "status": {"eq": "CANCELED"}})
    assert canceled.edges == []


def test_subscriptions_customer_id_filter_is_the_customers_internal_id(world: World, chunk: list[str]) -> None:
    """Stigg's docs: `subscriptions(filter: {customerId})` filters on the customer's internal id."""
    internal = customers_page(world.client, filter={"customerId": {"eq": chunk[3]}}).edges[0].node.id
    found = subscriptions_page(world.client, filter={"customerId": {"eq": internal}})
    assert [e.node.customer.customer_id for e in found.edges] == [chunk[3]]
    assert subscriptions_page(world.client, filter={"customerId": {"eq": chunk[3]}}).edges == []


def test_lists_are_of_one_environment(world: World, chunk: list[str], tmp_path: Path) -> None:
    environment_id = customers_page(world.client, filter={"customerId": {"eq": chunk[0]}}).edges[0].node.environment_id
    assert len(customers_page(world.client, filter={"environmentId": {"eq": environment_id}}).edges) == 10
    other_id = "00000000-0000-4000-8000-000000000000"
    assert customers_page(world.client, filter={"environmentId": {"eq": other_id}}).edges == []
    other = start_world(tmp_path)  # another environment: its own records only
    try:
        assert customers_page(other.client, filter={"customerId": {"in": chunk}}).total_count == 0
        import_customers(other.client, {"customerId": chunk[0]})
        assert customers_page(other.client, filter={"customerId": {"in": chunk}}).total_count == 1
    finally:
        other.stop()


@pytest.fixture
def own_world(tmp_path: Path) -> Iterator[World]:
    """A fresh emulator on a clock in January 2030: these tests change limits and move time."""
    world = start_world(tmp_path, WorldClock(start_at=JAN_1.timestamp()))
    seed_catalogue(world.client)
    try:
        yield world
    finally:
        world.stop()


def set_limits(world: World, **limits: int) -> None:
    response = httpx.post(f"{world.emulator.url}/_emulator/stigg/limits", json=limits)
    assert response.status_code == 200, response.text


def test_list_rate_limits_answer_429_until_the_minute_passes(own_world: World) -> None:
    world = own_world
    set_limits(world, list_subscriptions_per_minute=2, list_customers_per_minute=1)
    subscriptions_page(world.client)
    subscriptions_page(world.client)
    raw = world.client.request(Stigg.query.get_subscriptions, {}, raw_response=True)
    assert [e["extensions"]["code"] for e in raw["errors"]] == ["RateLimitExceeded"]
    customers_page(world.client)
    with pytest.raises(GraphQLErrors) as throttled:
        customers_page(world.client)
    assert error_codes(throttled) == ["RateLimitExceeded"]
    world.clock.advance(timedelta(minutes=1).total_seconds())
    subscriptions_page(world.client)
    customers_page(world.client)


def test_import_task_reads_pending_then_its_refused_rows(own_world: World) -> None:
    world = own_world
    good, bad = unique("cus"), unique("cus")
    import_customers(world.client, {"customerId": good})
    set_limits(world, subscription_import_delay_seconds=60)
    task_id = import_subscriptions(
        world.client, {"customerId": good, "planId": "plan-free"}, {"customerId": bad, "planId": "plan-free"}
    )
    (pending,) = [
        e.node
        for e in world.client.request(IMPORT_TASKS, {"filter": {"id": {"eq": task_id}}}).import_integration_tasks.edges
    ]
    assert (pending.task_type, pending.status, pending.progress, pending.total_subtasks_count) == (
        "IMPORT_SUBSCRIPTIONS_BULK",
        "PENDING",
        0,
        2,
    )
    world.clock.advance(61)
    (done,) = [
        e.node
        for e in world.client.request(IMPORT_TASKS, {"filter": {"id": {"eq": task_id}}}).import_integration_tasks.edges
    ]
    assert (done.status, done.progress, done.customers_count) == ("PARTIALLY_FAILED", 100, 2)
    assert [(e.id, e.error.split(":")[0]) for e in done.import_errors] == [(bad, "CustomerNotFound")]
    pending_filter = {"status": {"eq": "PENDING"}, "taskType": {"eq": "IMPORT_SUBSCRIPTIONS_BULK"}}
    assert world.client.request(IMPORT_TASKS, {"filter": pending_filter}).import_integration_tasks.edges == []
