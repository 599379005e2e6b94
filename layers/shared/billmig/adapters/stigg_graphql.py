"""The Stigg target on Stigg's GraphQL API, through the official `stigg-api-client`.

The client turns HTTP errors into GraphQL error lists (sgqlc) and retries only what escapes as `HTTPError`, so each
reply is read raw here and typed: 429 -> `VendorThrottled`, 5xx or no answer -> `VendorUnavailable`, the rest ->
`VendorRejected`, so Step Functions retries only what can succeed. Reads select just the fields the import needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import requests
import stigg.generated.schema as stigg_schema
from sgqlc.operation import Operation
from sgqlc.types import Arg, Variable, list_of, non_null
from stigg import Stigg
from stigg.client import StiggClient

from billmig.errors import VendorRejected, VendorThrottled, VendorUnavailable
from billmig.stigg.errors import PaymentRequired, SubscriptionExists
from billmig.stigg.pacing import Pacer, Unpaced, limits_for
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import ImportTask, PaidProvision, StiggCustomer, StiggSubscription, UsageReading

_EXISTS_CODES = ("DUPLICATE", "ALREADY_EXIST", "ALREADYEXIST", "DUPLICATED")
_NOT_FOUND_CODES = ("NOT_FOUND", "NOTFOUND")


_CUSTOMER_FIELDS = (
    "customer_id",
    "email",
    "name",
    "billing_id",
    "has_payment_method",
    "created_at",
    "updated_at",
    "additional_meta_data",
)

PAGE_SIZE = 50
"""Ids per list call and the page size asked for. Stigg documents no GraphQL page size; its schema is nestjs-query's,
whose default `maxResultsSize` is 50 (the emulator refuses more, with nestjs-query's message)."""

LIVE_STATUSES = ("ACTIVE", "IN_TRIAL")


def _find_customer_operation() -> Operation:
    op = Operation(
        stigg_schema.Query,
        name="BillmigFindCustomer",
        variables={"input": Arg(non_null(stigg_schema.GetCustomerByRefIdInput))},
    )
    op.get_customer_by_ref_id(input=Variable("input")).__fields__(*_CUSTOMER_FIELDS)
    return op


def _list_variables(filter_type: Any, sort_type: Any) -> dict[str, Arg]:
    return {
        "filter": Arg(filter_type),
        "paging": Arg(stigg_schema.CursorPaging),
        "sorting": Arg(list_of(non_null(sort_type))),
    }


def _list_customers_operation() -> Operation:
    """`customers(filter, paging, sorting)`: one page of customers, with the cursor to the next."""
    op = Operation(
        stigg_schema.Query,
        name="BillmigListCustomers",
        variables=_list_variables(stigg_schema.CustomerFilter, stigg_schema.CustomerSort),
    )
    page = op.customers(filter=Variable("filter"), paging=Variable("paging"), sorting=Variable("sorting"))
    page.edges().node().__fields__(*_CUSTOMER_FIELDS)
    page.page_info().__fields__("has_next_page", "end_cursor")
    return op


def _list_subscriptions_operation() -> Operation:
    """`subscriptions(filter, paging, sorting)`: one page of subscriptions, each with its customer's id."""
    op = Operation(
        stigg_schema.Query,
        name="BillmigListSubscriptions",
        variables=_list_variables(stigg_schema.SubscriptionQueryFilter, stigg_schema.SubscriptionQuerySort),
    )
    page = op.subscriptions(filter=Variable("filter"), paging=Variable("paging"), sorting=Variable("sorting"))
    node = page.edges().node()
    _subscription_fields(node)
    node.customer().customer_id()
    page.page_info().__fields__("has_next_page", "end_cursor")
    return op


def _subscription_fields(selection: Any) -> None:
    selection.subscription_id()
    selection.status()
    selection.start_date()
    selection.additional_meta_data()
    selection.plan().ref_id()
    selection.resource().resource_id()
    addons = selection.addons()
    addons.quantity()
    addons.addon().ref_id()


def _find_subscription_operation() -> Operation:
    op = Operation(
        stigg_schema.Query,
        name="BillmigFindSubscription",
        variables={"input": Arg(non_null(stigg_schema.GetSubscriptionInput))},
    )
    _subscription_fields(op.get_subscription(input=Variable("input")))
    return op


def _active_subscriptions_operation() -> Operation:
    op = Operation(
        stigg_schema.Query,
        name="BillmigActiveSubscriptions",
        variables={"input": Arg(non_null(stigg_schema.GetActiveSubscriptionsInput))},
    )
    _subscription_fields(op.get_active_subscriptions(input=Variable("input")))
    return op


def _provision_operation() -> Operation:
    """Just the fields needed. The SDK's own `provision_subscription` document spreads fragments inside inline
    fragments that sgqlc leaves undefined, so a server that validates documents (Stigg's emulator does) rejects it."""
    op = Operation(
        stigg_schema.Mutation,
        name="BillmigProvisionSubscription",
        variables={"input": Arg(non_null(stigg_schema.ProvisionSubscriptionInput))},
    )
    result = op.provision_subscription_v2(input=Variable("input"))
    result.status()
    _subscription_fields(result.subscription())
    return op


def _existing_ids_operation(name: str, field: str, filter_type: Any, id_field: str) -> Operation:
    """One page of just the ids a filter matches, and how many it matches in all (`totalCount`)."""
    op = Operation(
        stigg_schema.Query,
        name=name,
        variables={"filter": Arg(filter_type), "paging": Arg(stigg_schema.CursorPaging)},
    )
    page = getattr(op, field)(filter=Variable("filter"), paging=Variable("paging"))
    page.total_count()
    getattr(page.edges().node(), id_field)()
    page.page_info().__fields__("has_next_page", "end_cursor")
    return op


def _import_task_operation() -> Operation:
    op = Operation(
        stigg_schema.Query,
        name="BillmigImportTask",
        variables={"filter": Arg(stigg_schema.ImportIntegrationTaskFilter), "paging": Arg(stigg_schema.CursorPaging)},
    )
    node = op.import_integration_tasks(filter=Variable("filter"), paging=Variable("paging")).edges().node()
    node.__fields__("id", "status", "total_subtasks_count")
    node.import_errors().__fields__("id", "error")
    return op


FIND_CUSTOMER = _find_customer_operation()
PROVISION = _provision_operation()
FIND_SUBSCRIPTION = _find_subscription_operation()
ACTIVE_SUBSCRIPTIONS = _active_subscriptions_operation()
LIST_CUSTOMERS = _list_customers_operation()
LIST_SUBSCRIPTIONS = _list_subscriptions_operation()
EXISTING_CUSTOMERS = _existing_ids_operation(
    "BillmigExistingCustomers", "customers", stigg_schema.CustomerFilter, "customer_id"
)
EXISTING_SUBSCRIPTIONS = _existing_ids_operation(
    "BillmigExistingSubscriptions", "subscriptions", stigg_schema.SubscriptionQueryFilter, "subscription_id"
)
IMPORT_TASK = _import_task_operation()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _error_codes(errors: list[dict[str, Any]]) -> list[str]:
    codes = []
    for error in errors:
        extensions = error.get("extensions") or {}
        code = extensions.get("code") if isinstance(extensions, dict) else None
        codes.append(str(code or ""))
    return codes


class StiggGraphQLTarget:
    def __init__(self, client: StiggClient, pacer: Pacer | None = None) -> None:
        self._client = client
        self._pacer: Pacer = pacer or Unpaced()

    @classmethod
    def connect(cls, api_key: str, api_url: str, pacer: Pacer | None = None) -> StiggGraphQLTarget:
        return cls(Stigg.create_client(api_key, api_url=api_url, enable_edge=False), pacer)

    # -- the one way every call goes -----------------------------------------------------------------------------
    def _call(
        self,
        operation: Operation,
        variables: dict[str, Any],
        *,
        what: str,
        missing_ok: bool = False,
        customer_key: str | None = None,
    ) -> Any:
        """One request: paced within Stigg's limits, its reply typed; a 429 all the same cools its limits down."""
        limits = limits_for(what, customer_key)
        self._pacer.acquire(limits)
        try:
            raw = self._client.request(operation, variables, raw_response=True)
        except requests.RequestException as exc:
            raise VendorUnavailable(f"Stigg {what}: {exc}") from exc
        errors = raw.get("errors") or []
        if errors:
            status = raw.get("status") or next((e.get("status") for e in errors if e.get("status")), None)
            codes = _error_codes(errors)
            message = "; ".join(
                f"{c + ': ' if c else ''}{e.get('message')}" for c, e in zip(codes, errors, strict=True)
            )
            upper = [c.upper() for c in codes] + [str(e.get("message", "")).upper().replace(" ", "_") for e in errors]
            if status == 429 or any("RATE_LIMIT" in c or "TOO_MANY" in c for c in upper):
                self._pacer.throttled(limits)
                raise VendorThrottled(f"Stigg {what}: {message}")
            if isinstance(status, int) and status >= 500:
                raise VendorUnavailable(f"Stigg {what}: HTTP {status}: {message}")
            if missing_ok and any(any(n in c for n in _NOT_FOUND_CODES) for c in upper):
                return None
            if any(any(x in c for x in _EXISTS_CODES) for c in upper):
                raise SubscriptionExists(f"Stigg {what}: {message}")
            if any("PAYMENT_REQUIRED" in c for c in upper):
                raise PaymentRequired(f"Stigg {what}: {message}")
            raise VendorRejected(f"Stigg {what}: {message}")
        return _Reply(operation + raw, raw.get("data") or {})

    # -- writes --------------------------------------------------------------------------------------------------
    def import_customers(self, customers: Sequence[CustomerRecord]) -> None:
        rows = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in customers]
        self._call(Stigg.mutation.import_customer_bulk, {"input": {"customers": rows}}, what="importCustomersBulk")

    def import_subscriptions(self, subscriptions: Sequence[tuple[str, SubscriptionRecord]]) -> str | None:
        rows = [
            {**record.model_dump(mode="json", by_alias=True, exclude_none=True), "subscriptionId": subscription_id}
            for subscription_id, record in subscriptions
        ]
        for row in rows:
            if not row.get("subscriptionEntitlements"):
                row.pop("subscriptionEntitlements", None)
            if not row.get("addons"):
                row.pop("addons", None)
        result = self._call(
            Stigg.mutation.import_subscriptions_bulk, {"input": {"subscriptions": rows}}, what="importSubscriptionsBulk"
        )
        task = result.import_subscriptions_bulk
        return str(task) if task is not None else None

    def report_usage(self, usages: Sequence[tuple[str, UsageRecord]]) -> list[UsageReading]:
        rows = []
        for key, record in usages:
            row: dict[str, Any] = {
                "customerId": record.customer_id,
                "featureId": record.feature_id,
                "value": record.usage,
                "updateBehavior": "SET",
                "idempotencyKey": key,
            }
            if record.resource_id:
                row["resourceId"] = record.resource_id
            rows.append(row)
        result = self._call(Stigg.mutation.report_usage_bulk, {"input": {"usages": rows}}, what="reportUsageBulk")
        return [
            UsageReading(
                customer_id=u.customer_id,
                feature_id=u.feature_id,
                resource_id=u.resource_id,
                current_usage=float(u.current_usage),
            )
            for u in result.report_usage_bulk
        ]

    def provision_paid(self, provision: PaidProvision) -> StiggSubscription:
        record = provision.record
        metadata = {
            **(record.metadata or {}),
            "migratedFrom": provision.stripe_subscription_id,
            "migrationId": provision.migration_id,
        }
        request: dict[str, Any] = {
            "customerId": record.customer_id,
            "planId": record.plan_id,
            "subscriptionId": provision.subscription_id,
            "startDate": _iso(record.start_date),
            "additionalMetaData": metadata,
            "billingInformation": {
                "isBackdated": True,
                "metadata": {"migratedFrom": provision.stripe_subscription_id},
            },
        }
        optional = {
            "resourceId": record.resource_id,
            "billingPeriod": record.billing_period,
            "unitQuantity": record.unit_quantity,
            "addons": [{"addonId": a.addon_id, "quantity": a.quantity} for a in record.addons] or None,
            "subscriptionEntitlements": [
                e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in record.subscription_entitlements
            ]
            or None,
        }
        request.update({k: v for k, v in optional.items() if v is not None})
        customer_key = f"{record.customer_id}:{record.resource_id}" if record.resource_id else record.customer_id
        result = self._call(PROVISION, {"input": request}, what="provisionSubscriptionV2", customer_key=customer_key)
        outcome = result.provision_subscription_v2
        if str(outcome.status) == "PAYMENT_REQUIRED":
            raise PaymentRequired(f"Stigg provisionSubscriptionV2 for {record.key}: PAYMENT_REQUIRED")
        return _subscription(outcome.subscription)

    # -- reads ---------------------------------------------------------------------------------------------------
    def find_customer(self, customer_id: str) -> StiggCustomer | None:
        result = self._call(
            FIND_CUSTOMER,
            {"input": {"customerId": customer_id}},
            what="getCustomerByRefId",
            missing_ok=True,
            customer_key=customer_id,
        )
        if result is None or not _present(result, "getCustomerByRefId"):
            return None
        return _customer(result.get_customer_by_ref_id)

    def active_subscriptions(self, customer_id: str, resource_id: str | None) -> list[StiggSubscription]:
        variables: dict[str, Any] = {"customerId": customer_id}
        if resource_id:
            variables["resourceId"] = resource_id
        result = self._call(
            ACTIVE_SUBSCRIPTIONS,
            {"input": variables},
            what="getActiveSubscriptions",
            missing_ok=True,
            customer_key=customer_id,
        )
        if result is None:
            return []
        return [_subscription(s) for s in result.get_active_subscriptions]

    def customers_by_id(self, customer_ids: Sequence[str]) -> dict[str, StiggCustomer]:
        found: dict[str, StiggCustomer] = {}
        sorting = [{"field": "customerId", "direction": "ASC"}]
        for group in _groups(customer_ids):
            filter_ = {"customerId": {"in": group}}
            for node in self._pages(LIST_CUSTOMERS, "customers", filter_, sorting):
                found[node.customer_id] = _customer(node)
        return found

    def subscriptions_by_id(self, subscription_ids: Sequence[str]) -> dict[str, StiggSubscription]:
        found: dict[str, StiggSubscription] = {}
        sorting = [{"field": "subscriptionId", "direction": "ASC"}]
        for group in _groups(subscription_ids):
            filter_ = {"subscriptionId": {"in": group}}
            for node in self._pages(LIST_SUBSCRIPTIONS, "subscriptions", filter_, sorting):
                found[node.subscription_id] = _subscription(node)
        return found

    def live_subscriptions_of(self, customer_ids: Sequence[str]) -> dict[str, list[StiggSubscription]]:
        found: dict[str, list[StiggSubscription]] = {cid: [] for cid in dict.fromkeys(customer_ids)}
        sorting = [{"field": "subscriptionId", "direction": "ASC"}]
        for group in _groups(customer_ids):
            filter_ = {"customer": {"customerId": {"in": group}}, "status": {"in": list(LIVE_STATUSES)}}
            for node in self._pages(LIST_SUBSCRIPTIONS, "subscriptions", filter_, sorting):
                found.setdefault(node.customer.customer_id, []).append(_subscription(node))
        return found

    def existing_customer_ids(self, customer_ids: Sequence[str]) -> set[str]:
        return self._existing(EXISTING_CUSTOMERS, "customers", "customerId", "customer_id", customer_ids)

    def existing_subscription_ids(self, subscription_ids: Sequence[str]) -> set[str]:
        return self._existing(
            EXISTING_SUBSCRIPTIONS, "subscriptions", "subscriptionId", "subscription_id", subscription_ids
        )

    def _existing(self, operation: Operation, field: str, key: str, attribute: str, ids: Sequence[str]) -> set[str]:
        """One filter on every id: the first page's `totalCount` settles "none" and "all" at once; otherwise the
        matching ids are paged through (only they, 50 a page)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        paging: dict[str, Any] = {"first": PAGE_SIZE}
        found: set[str] = set()
        while True:
            variables = {"filter": {key: {"in": wanted}}, "paging": paging}
            page = getattr(self._call(operation, variables, what=field), field)
            if int(page.total_count or 0) in (0, len(wanted)) and not found:
                return set(wanted) if page.total_count else set()
            found.update(getattr(edge.node, attribute) for edge in page.edges)
            if not page.page_info.has_next_page or not page.page_info.end_cursor:
                return found
            paging = {"first": PAGE_SIZE, "after": page.page_info.end_cursor}

    def import_task(self, task_id: str) -> ImportTask | None:
        variables = {"filter": {"id": {"eq": task_id}}, "paging": {"first": 1}}
        page = self._call(IMPORT_TASK, variables, what="importIntegrationTasks").import_integration_tasks
        for edge in page.edges:
            node = edge.node
            return ImportTask(
                task_id=str(node.id),
                status=str(node.status),
                errors={str(e.id): str(e.error) for e in (node.import_errors or [])},
            )
        return None

    def _pages(self, operation: Operation, field: str, filter_: dict[str, Any], sorting: list[Any]) -> Iterator[Any]:
        """Every node the filter matches, page after page: each page is one call, typed like every other."""
        paging: dict[str, Any] = {"first": PAGE_SIZE}
        while True:
            variables = {"filter": filter_, "paging": paging, "sorting": sorting}
            page = getattr(self._call(operation, variables, what=field), field)
            yield from (edge.node for edge in page.edges)
            if not page.page_info.has_next_page or not page.page_info.end_cursor:
                return
            paging = {"first": PAGE_SIZE, "after": page.page_info.end_cursor}

    def find_subscription(self, subscription_id: str) -> StiggSubscription | None:
        result = self._call(
            FIND_SUBSCRIPTION, {"input": {"subscriptionId": subscription_id}}, what="getSubscription", missing_ok=True
        )
        if result is None or not _present(result, "getSubscription"):
            return None
        return _subscription(result.get_subscription)


class _Reply:
    """The parsed reply, plus the raw data: sgqlc turns a null object into an empty one, the raw data does not."""

    def __init__(self, parsed: Any, data: dict[str, Any]) -> None:
        self.parsed = parsed
        self.data = data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parsed, name)


def _present(result: _Reply, field: str) -> bool:
    return result.data.get(field) is not None


def _groups(ids: Sequence[str]) -> Iterator[list[str]]:
    """The distinct ids, `PAGE_SIZE` at a time: each group's matches fit one page (ids are unique in Stigg)."""
    distinct = list(dict.fromkeys(ids))
    for start in range(0, len(distinct), PAGE_SIZE):
        yield distinct[start : start + PAGE_SIZE]


def _customer(c: Any) -> StiggCustomer:
    return StiggCustomer(
        customer_id=c.customer_id,
        email=c.email,
        name=c.name,
        billing_id=c.billing_id,
        has_payment_method=bool(c.has_payment_method),
        created_at=c.created_at,
        updated_at=c.updated_at,
        metadata=dict(c.additional_meta_data or {}),
    )


def _subscription(s: Any) -> StiggSubscription:
    return StiggSubscription(
        subscription_id=s.subscription_id,
        plan_id=s.plan.ref_id if s.plan else "",
        status=str(s.status),
        start_date=s.start_date,
        resource_id=s.resource.resource_id if s.resource else None,
        addons={a.addon.ref_id: int(a.quantity) for a in (s.addons or []) if a.addon is not None},
        metadata=dict(s.additional_meta_data or {}),
    )
