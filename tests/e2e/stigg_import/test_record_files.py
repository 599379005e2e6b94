"""Import files: the guide's own examples, every problem reported at once, and a clear word on comments."""

from __future__ import annotations

import json

import pytest
from billmig.stigg.errors import InvalidImportFile
from billmig.stigg.import_plan import ImportRules, Located, plan_import
from billmig.stigg.record_files import FileProblem, RecordKind, json_extension_at, load_records
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import StiggCustomer
from import_world import GUIDE, without_comments


@pytest.mark.parametrize(
    ("kind", "name", "line", "column"),
    [(RecordKind.CUSTOMERS, "customers.json", 5, 36), (RecordKind.SUBSCRIPTIONS, "subscriptions.json", 6, 31)],
)
def test_a_file_copied_from_the_guide_gets_a_message_naming_the_comment(
    kind: RecordKind, name: str, line: int, column: int
) -> None:
    with pytest.raises(InvalidImportFile) as caught:
        load_records(kind, (GUIDE / name).read_text(), file_name=name)
    (problem,) = caught.value.problems
    assert isinstance(problem, FileProblem)
    assert str(problem).startswith(f"{name}: line {line}, column {column}: a comment. JSON allows no comments")


def test_a_trailing_comma_is_named_with_its_position() -> None:
    assert json_extension_at('{"a": [1, 2,\n ]}') == ("a trailing comma", 1, 12)
    assert json_extension_at('{"url": "http://x//y", "b": 1}') is None


def test_the_guide_examples_without_comments_are_valid_records() -> None:
    (customer,) = load_records(
        RecordKind.CUSTOMERS, without_comments((GUIDE / "customers.json").read_text()), file_name="customers.json"
    )
    assert isinstance(customer, CustomerRecord)
    assert customer.customer_id == "lorem-ipsum"
    assert customer.payment_method_id == "pm_1N04AHEdaKWoSZ0OgP78RflV"
    assert customer.metadata == {"isTest": "true"}
    (subscription,) = load_records(
        RecordKind.SUBSCRIPTIONS,
        without_comments((GUIDE / "subscriptions.json").read_text()),
        file_name="subscriptions.json",
    )
    assert isinstance(subscription, SubscriptionRecord)
    assert subscription.resource_id == "site-1"
    (usage,) = load_records(RecordKind.USAGE, without_comments((GUIDE / "usage.json").read_text()), file_name="u.json")
    assert isinstance(usage, UsageRecord)
    assert usage.usage == 5


def test_every_problem_of_a_file_is_reported_at_once_with_file_record_and_field() -> None:
    document = {
        "customers": [
            {"customerId": "ok-1", "email": "a@example.com"},
            {"customerId": "bad-1", "emial": "typo@example.com"},
            {"email": "no-id@example.com"},
            {"customerId": "bad-2", "updatedAt": "yesterday"},
            {"customerId": "ok-1"},
        ]
    }
    with pytest.raises(InvalidImportFile) as caught:
        load_records(RecordKind.CUSTOMERS, json.dumps(document), file_name="customers.json")
    assert [str(p) for p in caught.value.problems] == [
        "customers.json record 1 (bad-1) field emial: Extra inputs are not permitted",
        "customers.json record 2 field customerId: Field required",
        "customers.json record 3 (bad-2) field updatedAt: Input should be a valid datetime or date, input is too short",
        "customers.json record 4 (ok-1): duplicate of record 0 (ok-1)",
    ]


def test_a_file_of_the_wrong_shape_says_which_shape_it_wants() -> None:
    with pytest.raises(InvalidImportFile, match=r'usage.json: expected an object \{"usages": \[\.\.\.\]\}'):
        load_records(
            RecordKind.USAGE, json.dumps([{"customerId": "c", "featureId": "f", "usage": 1}]), file_name="usage.json"
        )


def _located(file: str, records: list) -> list:
    return [Located(file, i, r) for i, r in enumerate(records)]


def test_order_and_paid_plans_are_checked_before_any_call() -> None:
    customers = _located(
        "customers.json",
        [CustomerRecord(customerId="with-pm", paymentMethodId="pm_1"), CustomerRecord(customerId="no-pm")],
    )
    subscriptions = _located(
        "paid.json",
        [
            SubscriptionRecord(
                customerId="with-pm", planId="plan-growth", billingId="sub_1", startDate="2026-01-01T00:00:00Z"
            ),
            SubscriptionRecord(
                customerId="no-pm", planId="plan-growth", billingId="sub_2", startDate="2026-01-01T00:00:00Z"
            ),
            SubscriptionRecord(customerId="ghost", planId="plan-free"),
            SubscriptionRecord(customerId="in-stigg", planId="plan-growth", startDate="2026-01-01T00:00:00Z"),
        ],
    )
    usage = _located("usage.json", [UsageRecord(customerId="nobody", featureId="feature-api-calls", usage=3)])
    looked_up: list[str] = []

    def existing(customer_id: str) -> StiggCustomer | None:
        looked_up.append(customer_id)
        if customer_id != "in-stigg":
            return None
        return StiggCustomer("in-stigg", None, None, None, True, None, None)

    with pytest.raises(InvalidImportFile) as caught:
        plan_import(customers, subscriptions, usage, ImportRules(paid_plan_ids=frozenset({"plan-growth"})), existing)
    assert [str(p) for p in caught.value.problems] == [
        "paid.json record 1 (no-pm/-/plan-growth) field customerId: paid plan 'plan-growth' but customer 'no-pm' has no"
        " paymentMethodId (Stigg would answer PAYMENT_REQUIRED)",
        "paid.json record 2 (ghost/-/plan-free) field customerId: customer 'ghost' is neither in the customers file nor"
        " in Stigg: import it first",
        "paid.json record 3 (in-stigg/-/plan-growth) field billingId: a paid plan must name the Stripe subscription it"
        " replaces (sub_...), to cancel it",
        "usage.json record 0 (nobody/-/feature-api-calls) field customerId: customer 'nobody' is neither in the"
        " customers file nor in Stigg: import it first",
    ]
    assert sorted(set(looked_up)) == ["ghost", "in-stigg", "nobody"]


def test_chunks_follow_stiggs_call_sizes() -> None:
    """A customer chunk is one call of 1,000; a usage chunk is ten calls of 100 (one Task, resumable between them)."""
    customers = _located("c.json", [CustomerRecord(customerId=f"c-{i}") for i in range(2500)])
    usage = _located(
        "u.json", [UsageRecord(customerId=f"c-{i}", featureId="feature-api-calls", usage=i) for i in range(2500)]
    )
    plan = plan_import(customers, [], usage, ImportRules(), lambda _id: None)
    assert [len(c) for c in plan.customers] == [1000, 1000, 500]
    assert [len(c) for c in plan.usage] == [1000, 1000, 500]
