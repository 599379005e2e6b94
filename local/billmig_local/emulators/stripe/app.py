"""The HTTP surface: bearer auth, v1 form decoding, `stripe.params` validation, the handler, then `expand[]`."""

from __future__ import annotations

import functools
import json
import re
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import (
    billing_credits,
    catalog,
    customers,
    invoices,
    manual_invoices,
    meter_event_stream,
    meters,
    search,
    subscription_schedules,
    subscriptions,
    test_clocks,
)
from .api_call import ApiCall, Handler
from .billing_engine import BillingEngine
from .errors import StripeError
from .form_encoding import decode_form, decode_query
from .params_validation import validate
from .rendering import expand
from .state import StripeState

# (method, path, handler, the `stripe.params` TypedDict the SDK sends for it)
ROUTES: list[tuple[str, str, Handler, str | None]] = [
    ("GET", "/v1/customers/search", search.search_customers, "CustomerSearchParams"),
    ("GET", "/v1/subscriptions/search", search.search_subscriptions, "SubscriptionSearchParams"),
    ("GET", "/v1/prices/search", search.search_prices, "PriceSearchParams"),
    ("POST", "/v1/customers", customers.create_customer, "CustomerCreateParams"),
    ("GET", "/v1/customers", customers.list_customers, "CustomerListParams"),
    ("GET", "/v1/customers/{customer}", customers.retrieve_customer, "CustomerRetrieveParams"),
    ("POST", "/v1/customers/{customer}", customers.update_customer, "CustomerUpdateParams"),
    ("DELETE", "/v1/customers/{customer}", customers.delete_customer, "CustomerDeleteParams"),
    (
        "GET",
        "/v1/customers/{customer}/payment_methods",
        customers.list_customer_payment_methods,
        "CustomerPaymentMethodListParams",
    ),
    ("POST", "/v1/payment_methods", customers.create_payment_method, "PaymentMethodCreateParams"),
    ("GET", "/v1/payment_methods/{payment_method}", customers.retrieve_payment_method, "PaymentMethodRetrieveParams"),
    (
        "POST",
        "/v1/payment_methods/{payment_method}/attach",
        customers.attach_payment_method,
        "PaymentMethodAttachParams",
    ),
    ("POST", "/v1/products", catalog.create_product, "ProductCreateParams"),
    ("GET", "/v1/products", catalog.list_products, "ProductListParams"),
    ("GET", "/v1/products/{id}", catalog.retrieve_product, "ProductRetrieveParams"),
    ("POST", "/v1/products/{id}", catalog.update_product, "ProductUpdateParams"),
    ("POST", "/v1/prices", catalog.create_price, "PriceCreateParams"),
    ("GET", "/v1/prices", catalog.list_prices, "PriceListParams"),
    ("GET", "/v1/prices/{price}", catalog.retrieve_price, "PriceRetrieveParams"),
    ("POST", "/v1/prices/{price}", catalog.update_price, "PriceUpdateParams"),
    ("POST", "/v1/billing/meters", meters.create_meter, "billing.MeterCreateParams"),
    ("GET", "/v1/billing/meters", meters.list_meters, "billing.MeterListParams"),
    ("GET", "/v1/billing/meters/{id}", meters.retrieve_meter, "billing.MeterRetrieveParams"),
    ("POST", "/v1/billing/meters/{id}", meters.update_meter, "billing.MeterUpdateParams"),
    ("POST", "/v1/billing/meters/{id}/deactivate", meters.deactivate_meter, "billing.MeterDeactivateParams"),
    ("POST", "/v1/billing/meters/{id}/reactivate", meters.reactivate_meter, "billing.MeterReactivateParams"),
    (
        "GET",
        "/v1/billing/meters/{id}/event_summaries",
        meters.list_event_summaries,
        "billing.MeterEventSummaryListParams",
    ),
    ("POST", "/v1/billing/meter_events", meters.create_meter_event, "billing.MeterEventCreateParams"),
    (
        "POST",
        "/v2/billing/meter_event_session",
        meter_event_stream.create_session,
        "v2.billing.MeterEventSessionCreateParams",
    ),
    (
        "POST",
        meter_event_stream.STREAM_PATH,
        meter_event_stream.stream_events,
        "v2.billing.MeterEventStreamCreateParams",
    ),
    ("POST", "/v1/subscriptions", subscriptions.create_subscription, "SubscriptionCreateParams"),
    ("GET", "/v1/subscriptions", subscriptions.list_subscriptions, "SubscriptionListParams"),
    ("GET", "/v1/subscriptions/{sub}", subscriptions.retrieve_subscription, "SubscriptionRetrieveParams"),
    ("POST", "/v1/subscriptions/{sub}", subscriptions.update_subscription, "SubscriptionUpdateParams"),
    ("DELETE", "/v1/subscriptions/{sub}", subscriptions.cancel_subscription, "SubscriptionCancelParams"),
    (
        "POST",
        "/v1/subscription_schedules",
        subscription_schedules.create_schedule,
        "SubscriptionScheduleCreateParams",
    ),
    ("GET", "/v1/subscription_schedules", subscription_schedules.list_schedules, "SubscriptionScheduleListParams"),
    (
        "GET",
        "/v1/subscription_schedules/{schedule}",
        subscription_schedules.retrieve_schedule,
        "SubscriptionScheduleRetrieveParams",
    ),
    (
        "POST",
        "/v1/subscription_schedules/{schedule}",
        subscription_schedules.update_schedule,
        "SubscriptionScheduleUpdateParams",
    ),
    (
        "POST",
        "/v1/subscription_schedules/{schedule}/release",
        subscription_schedules.release_schedule,
        "SubscriptionScheduleReleaseParams",
    ),
    (
        "POST",
        "/v1/subscription_schedules/{schedule}/cancel",
        subscription_schedules.cancel_schedule,
        "SubscriptionScheduleCancelParams",
    ),
    ("POST", "/v1/subscription_items", subscriptions.create_item, "SubscriptionItemCreateParams"),
    ("GET", "/v1/subscription_items", subscriptions.list_items, "SubscriptionItemListParams"),
    ("GET", "/v1/subscription_items/{item}", subscriptions.retrieve_item, "SubscriptionItemRetrieveParams"),
    ("POST", "/v1/subscription_items/{item}", subscriptions.update_item, "SubscriptionItemUpdateParams"),
    ("DELETE", "/v1/subscription_items/{item}", subscriptions.delete_item, "SubscriptionItemDeleteParams"),
    ("GET", "/v1/invoices/upcoming", invoices.upcoming_removed, None),
    ("GET", "/v1/invoices/upcoming/lines", invoices.upcoming_removed, None),
    ("POST", "/v1/invoices/create_preview", invoices.create_preview, "InvoiceCreatePreviewParams"),
    ("GET", "/v1/invoices", invoices.list_invoices, "InvoiceListParams"),
    ("GET", "/v1/invoices/{invoice}", invoices.retrieve_invoice, "InvoiceRetrieveParams"),
    ("GET", "/v1/invoices/{invoice}/lines", invoices.list_lines, "InvoiceLineItemListParams"),
    ("POST", "/v1/invoices", manual_invoices.create_invoice, "InvoiceCreateParams"),
    ("POST", "/v1/invoices/{invoice}/finalize", manual_invoices.finalize_invoice, "InvoiceFinalizeInvoiceParams"),
    ("POST", "/v1/invoices/{invoice}/pay", manual_invoices.pay_invoice, "InvoicePayParams"),
    ("POST", "/v1/invoiceitems", manual_invoices.create_invoice_item, "InvoiceItemCreateParams"),
    ("GET", "/v1/invoiceitems", manual_invoices.list_invoice_items, "InvoiceItemListParams"),
    ("GET", "/v1/invoiceitems/{invoiceitem}", manual_invoices.retrieve_invoice_item, "InvoiceItemRetrieveParams"),
    ("POST", "/v1/billing/credit_grants", billing_credits.create_grant, "billing.CreditGrantCreateParams"),
    ("GET", "/v1/billing/credit_grants", billing_credits.list_grants, "billing.CreditGrantListParams"),
    ("GET", "/v1/billing/credit_grants/{id}", billing_credits.retrieve_grant, "billing.CreditGrantRetrieveParams"),
    ("POST", "/v1/billing/credit_grants/{id}", billing_credits.update_grant, "billing.CreditGrantUpdateParams"),
    ("POST", "/v1/billing/credit_grants/{id}/void", billing_credits.void_grant, "billing.CreditGrantVoidGrantParams"),
    ("POST", "/v1/billing/credit_grants/{id}/expire", billing_credits.expire_grant, "billing.CreditGrantExpireParams"),
    (
        "GET",
        "/v1/billing/credit_balance_summary",
        billing_credits.balance_summary,
        "billing.CreditBalanceSummaryRetrieveParams",
    ),
    (
        "GET",
        "/v1/billing/credit_balance_transactions",
        billing_credits.list_transactions,
        "billing.CreditBalanceTransactionListParams",
    ),
    (
        "GET",
        "/v1/billing/credit_balance_transactions/{id}",
        billing_credits.retrieve_transaction,
        "billing.CreditBalanceTransactionRetrieveParams",
    ),
    ("POST", "/v1/test_helpers/test_clocks", test_clocks.create_clock, "test_helpers.TestClockCreateParams"),
    ("GET", "/v1/test_helpers/test_clocks", test_clocks.list_clocks, "test_helpers.TestClockListParams"),
    (
        "GET",
        "/v1/test_helpers/test_clocks/{test_clock}",
        test_clocks.retrieve_clock,
        "test_helpers.TestClockRetrieveParams",
    ),
    (
        "DELETE",
        "/v1/test_helpers/test_clocks/{test_clock}",
        test_clocks.delete_clock,
        "test_helpers.TestClockDeleteParams",
    ),
    (
        "POST",
        "/v1/test_helpers/test_clocks/{test_clock}/advance",
        test_clocks.advance_clock,
        "test_helpers.TestClockAdvanceParams",
    ),
]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json", headers=headers
    )


def _endpoint(handler: Handler, params_class: str | None, state: StripeState, engine: BillingEngine) -> Any:
    async def endpoint(request: Request) -> Response:
        request_id = "req_" + secrets.token_hex(7)
        headers = {"request-id": request_id}
        if version := request.headers.get("stripe-version"):
            headers["stripe-version"] = version
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            error = StripeError(
                401,
                "You did not provide an API key. Provide it in the Authorization header as a Bearer token.",
            )
            return _json(error.body(), 401, headers)
        raw = await request.body()
        v2 = request.url.path.startswith("/v2/")

        def run() -> dict[str, Any]:
            if v2:
                try:
                    decoded = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise StripeError(400, "The request body is not valid JSON.") from exc
            else:
                decoded = decode_form(raw) if request.method == "POST" else decode_query(request.url.query)
            params = validate(params_class, decoded) if params_class else decoded
            call = ApiCall(
                method=request.method,
                params=params,
                path=dict(request.path_params),
                state=state,
                engine=engine,
                url=request.url.path,
            )
            with state.lock:
                engine.catch_up_if_due()
                if request.url.path == meter_event_stream.STREAM_PATH:
                    meter_event_stream.authorized(call, auth[7:].strip())
                result = handler(call)
                return expand(state, result, params.get("expand"))

        try:
            result = await run_in_threadpool(run)
        except StripeError as raised:
            return _json(raised.body(), raised.status, {**headers, **raised.headers})
        return _json(result, 202 if request.url.path == meter_event_stream.STREAM_PATH else 200, headers)

    return endpoint


def _pattern(template: str) -> re.Pattern[str]:
    """`/v1/customers/{customer}` matches any one path segment where the template names a parameter."""
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", template)) + "$")


_TEMPLATES = [(method, _pattern(path), f"{method} {path}") for method, path, _, _ in ROUTES]


@functools.lru_cache(maxsize=65_536)
def endpoint_of(method: str, path: str) -> str:
    """The endpoint a request is, as Stripe's per-endpoint limits count them: its route's template, first match in
    route order as the router matches (`/v1/customers/search` before `/v1/customers/{customer}`)."""
    for route_method, pattern, name in _TEMPLATES:
        if route_method == method and pattern.match(path):
            return name
    return f"{method} {path}"


def build_app(state: StripeState, engine: BillingEngine) -> Starlette:
    routes = [
        Route(path, _endpoint(handler, params_class, state, engine), methods=[method])
        for method, path, handler, params_class in ROUTES
    ]

    async def unrecognized(request: Request, exc: Exception) -> Response:
        error = StripeError(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")
        return _json(error.body(), 404)

    return Starlette(routes=routes, exception_handlers={404: unrecognized, 405: unrecognized})
