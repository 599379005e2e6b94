"""reportUsageBulk through the SDK: SET replaces, DELTA adds, idempotency keys, periods, and what is refused."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import pytest
from sgqlc.operation import GraphQLErrors
from stigg import Stigg
from stigg_world import World, error_codes, import_customers, import_subscriptions, iso, report_usage, unique


@pytest.fixture
def subscribed(world: World) -> str:
    """A customer on the free plan since the 10th of last month (usage resets monthly on the 10th)."""
    cid = unique("cus")
    import_customers(world.client, {"customerId": cid})
    start = (world.clock.now_datetime() - timedelta(days=35)).replace(hour=0, minute=0, second=0, microsecond=0)
    import_subscriptions(world.client, {"customerId": cid, "planId": "plan-free", "startDate": iso(start)})
    return cid


def usage(cid: str, value: float, behavior: str | None = None, key: str | None = None) -> dict:
    item = {"customerId": cid, "featureId": "feature-api-calls", "value": value}
    if behavior:
        item["updateBehavior"] = behavior
    if key:
        item["idempotencyKey"] = key
    return item


def test_set_twice_leaves_the_set_value(world: World, subscribed: str) -> None:
    [first] = report_usage(world.client, usage(subscribed, 120, "SET"))
    [second] = report_usage(world.client, usage(subscribed, 80, "SET"))
    assert (first.current_usage, second.current_usage) == (120, 80)


def test_delta_adds(world: World, subscribed: str) -> None:
    replies = report_usage(
        world.client, usage(subscribed, 10, "SET"), usage(subscribed, 5, "DELTA"), usage(subscribed, 2.5)
    )
    assert [r.current_usage for r in replies] == [10, 15, 17.5]


def test_replayed_idempotency_key_is_a_no_op(world: World, subscribed: str) -> None:
    key = unique("key")
    [first] = report_usage(world.client, usage(subscribed, 7, "DELTA", key))
    [replayed] = report_usage(world.client, usage(subscribed, 7, "DELTA", key))
    assert (first.current_usage, replayed.current_usage) == (7, 7)
    assert replayed.id == first.id
    [other] = report_usage(world.client, usage(subscribed, 1, "DELTA", unique("key")))
    assert other.current_usage == 8


def months_later(moment: datetime, months: int) -> datetime:
    """Same day of the month `months` later, clamped to the month's end (Stigg's monthly anchor)."""
    year, month = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + year, month + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def test_reply_carries_the_monthly_usage_period_of_the_subscription(world: World, subscribed: str) -> None:
    [reply] = report_usage(world.client, usage(subscribed, 1, "SET"))
    reply_to = {"input": {"customerId": subscribed}}
    [subscription] = world.client.request(Stigg.query.get_active_subscriptions, reply_to).get_active_subscriptions
    started = subscription.start_date
    # 35 days after the start lies in the second monthly period: [start + 1 month, start + 2 months)
    assert reply.usage_period_start == months_later(started, 1)
    assert reply.usage_period_end == months_later(started, 2)
    assert reply.next_reset_date == reply.usage_period_end
    assert (reply.customer_id, reply.feature_id, reply.current_usage) == (subscribed, "feature-api-calls", 1)


def test_usage_history_lists_each_report(world: World, subscribed: str) -> None:
    report_usage(world.client, usage(subscribed, 3, "SET"), usage(subscribed, 4, "DELTA"))
    since = iso((world.clock.now_datetime() - timedelta(days=1)).replace(microsecond=0))
    history = world.client.request(
        Stigg.query.get_usage_history,
        {"usageHistoryInput": {"customerRefId": subscribed, "featureRefId": "feature-api-calls", "startDate": since}},
    ).usage_history
    assert [p.value for p in history.usage_measurements] == [3, 7]
    v2 = world.client.request(
        Stigg.query.get_usage_history_v2,
        {"input": {"customerId": subscribed, "featureId": "feature-api-calls", "startDate": since}},
    ).usage_history_v2
    [series] = v2.series
    assert [p.value for p in series.points] == [3, 7]


def test_events_metered_and_unmetered_features_are_refused(world: World, subscribed: str) -> None:
    with pytest.raises(GraphQLErrors) as events:
        report_usage(world.client, {"customerId": subscribed, "featureId": "feature-audit-log-events", "value": 1})
    assert error_codes(events) == ["CannotReportUsageForEntitlementWithMeterError"]
    with pytest.raises(GraphQLErrors) as boolean:
        report_usage(world.client, {"customerId": subscribed, "featureId": "feature-sso", "value": 1})
    assert error_codes(boolean) == ["MeteringNotAvailableForFeatureType"]


def test_unknown_customer_or_feature_is_refused_and_nothing_is_recorded(world: World, subscribed: str) -> None:
    report_usage(world.client, usage(subscribed, 5, "SET"))
    with pytest.raises(GraphQLErrors) as excinfo:
        report_usage(world.client, usage(subscribed, 100, "SET"), usage(unique("nobody"), 1))
    assert error_codes(excinfo) == ["CustomerNotFound"]
    with pytest.raises(GraphQLErrors) as feature:
        report_usage(world.client, {"customerId": subscribed, "featureId": "feature-nope", "value": 1})
    assert error_codes(feature) == ["FeatureNotFound"]
    [after] = report_usage(world.client, usage(subscribed, 0, "DELTA"))
    assert after.current_usage == 5


def test_more_usages_than_a_call_allows_are_refused(world: World, subscribed: str) -> None:
    with pytest.raises(GraphQLErrors) as excinfo:
        report_usage(world.client, *(usage(subscribed, 1) for _ in range(101)))
    assert error_codes(excinfo) == ["BadUserInput"]
