"""The HTTP surface: API key, validation of every document before any resolver runs, the SDK's fragment gap."""

from __future__ import annotations

import httpx
import pytest
from billmig_local.clock import WorldClock
from billmig_local.emulators.stigg import start
from billmig_local.emulators.stigg.sgqlc_fragments import _original
from sgqlc.operation import GraphQLErrors, SelectionList
from stigg import Stigg
from stigg_world import World, error_codes, import_customers, unique


def test_request_without_api_key_is_unauthenticated(world: World) -> None:
    anonymous = Stigg.create_client("", api_url=world.graphql_url, enable_edge=False)
    with pytest.raises(GraphQLErrors) as excinfo:
        anonymous.request(Stigg.query.get_customer_by_id, {"input": {"customerId": "x"}})
    assert error_codes(excinfo) == ["UNAUTHENTICATED"]
    response = httpx.post(world.graphql_url, json={"query": "{ currentEnvironment }"})
    assert response.status_code == 401


def test_misspelled_field_is_rejected_before_any_resolver_runs(world: World) -> None:
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    document = bytes(Stigg.query.get_customer_by_id).decode().replace("\nhasPaymentMethod\n", "\nhasPaymentMethd\n")
    assert "hasPaymentMethd" in document
    calls_before = world.env.resolver_calls
    response = httpx.post(
        world.graphql_url,
        headers={"X-API-KEY": "k"},
        json={"query": document, "variables": {"input": {"customerId": cid}}},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "hasPaymentMethd" in error["message"]
    assert world.env.resolver_calls == calls_before
    world.client.request(Stigg.query.get_customer_by_id, {"input": {"customerId": cid}})
    assert world.env.resolver_calls > calls_before  # the counter does count resolutions


def test_mistyped_variable_is_rejected_before_any_resolver_runs(world: World) -> None:
    calls_before = world.env.resolver_calls
    with pytest.raises(GraphQLErrors) as excinfo:
        world.client.request(
            Stigg.mutation.report_usage_bulk,
            {"input": {"usages": [{"customerId": "c", "featureId": "f", "value": "ten", "updateBehavior": "SET"}]}},
        )
    assert error_codes(excinfo) == ["BAD_USER_INPUT"]
    assert world.env.resolver_calls == calls_before


def test_sdk_documents_without_the_fragment_fix_spread_undefined_fragments(world: World) -> None:
    """sgqlc 16.x drops fragments spread inside inline fragments; Stigg's validation rejects such a document."""
    fixed = SelectionList.__collect_fragments__
    SelectionList.__collect_fragments__ = _original
    try:
        document = bytes(Stigg.query.get_active_subscriptions).decode()
    finally:
        SelectionList.__collect_fragments__ = fixed
    response = httpx.post(
        world.graphql_url,
        headers={"X-API-KEY": "k"},
        json={"query": document, "variables": {"input": {"customerId": "c"}}},
    )
    assert response.status_code == 400
    assert "Unknown fragment 'PackageFeatureEntitlementFragment'" in response.json()["errors"][0]["message"]


def test_a_configured_api_key_is_the_only_one_accepted() -> None:
    emulator = start(clock=WorldClock(), state_dir=None, api_key="the-key")
    try:
        url = f"{emulator.url}/graphql"
        wrong = Stigg.create_client("other-key", api_url=url, enable_edge=False)
        with pytest.raises(GraphQLErrors) as excinfo:
            wrong.request(Stigg.mutation.import_customer_bulk, {"input": {"customers": [{"customerId": "c"}]}})
        assert error_codes(excinfo) == ["UNAUTHENTICATED"]
        right = Stigg.create_client("the-key", api_url=url, enable_edge=False)
        assert right.request(Stigg.mutation.import_customer_bulk, {"input": {"customers": [{"customerId": "c"}]}})
    finally:
        emulator.server.stop()


def test_with_the_fragment_fix_every_sdk_document_validates_against_stiggs_schema() -> None:
    from billmig_local.emulators.stigg.schema import stigg_schema
    from graphql import parse, validate

    schema = stigg_schema()
    invalid = {}
    for group in (Stigg.query, Stigg.mutation):
        for name, operation in vars(group).items():
            if not name.startswith("_"):
                problems = validate(schema, parse(bytes(operation).decode()))
                if problems:
                    invalid[name] = problems[0].message
    assert invalid == {}
