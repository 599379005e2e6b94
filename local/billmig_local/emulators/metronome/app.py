"""The HTTP surface: bearer auth, JSON parsing, OpenAPI validation, then the handler, replies in Metronome's shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billmig_local.emulators.object_store import ObjectStore

from . import contracts, customers, invoices, pricing, usage
from .api_call import ApiCall, Handler
from .billing_engine import BillingEngine
from .errors import ApiError, for_version
from .openapi_validation import validate_request

ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/billable-metrics/create", pricing.create_billable_metric),
    ("GET", "/v1/billable-metrics/{billable_metric_id}", pricing.retrieve_billable_metric),
    ("GET", "/v1/billable-metrics", pricing.list_billable_metrics),
    ("POST", "/v1/contract-pricing/products/create", pricing.create_product),
    ("POST", "/v1/contract-pricing/products/get", pricing.retrieve_product),
    ("POST", "/v1/contract-pricing/products/list", pricing.list_products),
    ("POST", "/v1/contract-pricing/rate-cards/create", pricing.create_rate_card),
    ("POST", "/v1/contract-pricing/rate-cards/get", pricing.retrieve_rate_card),
    ("POST", "/v1/contract-pricing/rate-cards/list", pricing.list_rate_cards),
    ("POST", "/v1/contract-pricing/rate-cards/addRate", pricing.add_rate),
    ("POST", "/v1/contract-pricing/rate-cards/addRates", pricing.add_rates),
    ("POST", "/v1/contract-pricing/rate-cards/getRates", pricing.get_rates),
    ("POST", "/v1/customers", customers.create_customer),
    ("GET", "/v1/customers", customers.list_customers),
    ("POST", "/v1/customers/setBillableStatus", customers.set_billable_status),
    ("GET", "/v1/customers/{customer_id}", customers.retrieve_customer),
    ("POST", "/v1/customers/{customer_id}/setIngestAliases", customers.set_ingest_aliases),
    ("POST", "/v1/setCustomerBillingProviderConfigurations", customers.set_billing_configurations),
    ("POST", "/v1/getCustomerBillingProviderConfigurations", customers.get_billing_configurations),
    ("POST", "/v1/archiveCustomerBillingProviderConfigurations", customers.archive_billing_configurations),
    ("POST", "/v1/contracts/create", contracts.create_contract),
    ("POST", "/v2/contracts/get", contracts.retrieve_contract_v2),
    ("POST", "/v2/contracts/list", contracts.list_contracts_v2),
    ("POST", "/v2/contracts/edit", contracts.edit_contract_v2),
    ("POST", "/v1/contracts/updateEndDate", contracts.update_contract_end_date),
    ("POST", "/v1/contracts/customerBalances/list", contracts.list_balances),
    ("POST", "/v1/contracts/customerCommits/create", contracts.create_customer_commit),
    ("POST", "/v1/contracts/customerCredits/create", contracts.create_customer_credit),
    ("POST", "/v1/ingest", usage.ingest),
    ("POST", "/v1/events/search", usage.search_events),
    ("POST", "/v1/usage/groups", usage.usage_with_groups),
    ("GET", "/v1/customers/{customer_id}/invoices", invoices.list_invoices),
    ("GET", "/v1/customers/{customer_id}/invoices/{invoice_id}", invoices.retrieve_invoice),
    ("POST", "/v1/customers/{customer_id}/previewEvents", invoices.preview_events),
]


def _endpoint(handler: Handler, store: ObjectStore, engine: BillingEngine, now: Callable[[], float]) -> Any:
    async def endpoint(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return JSONResponse({"message": "Unauthorized: a bearer token is required"}, status_code=401)
        raw = await request.body()
        has_body = request.method == "POST"
        query_pairs = parse_qsl(request.url.query, keep_blank_values=True)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return JSONResponse({"message": "Invalid request: body is not valid JSON"}, status_code=400)

        def run() -> Any:
            # the document marks no request body as required; an absent one is checked as `{}` so the
            # missing required fields are named, as Metronome does
            validate_request(request.method, request.url.path, query_pairs, raw or (b"{}" if has_body else b""))
            engine.catch_up_if_due()
            call = ApiCall(
                body=body if body is not None else {},
                query=dict(query_pairs),
                path=dict(request.path_params),
                store=store,
                engine=engine,
                now=now,
            )
            return handler(call)

        try:
            result = await run_in_threadpool(run)
        except ApiError as raised:
            error = for_version(raised, request.url.path)
            return JSONResponse(error.body(), status_code=error.status)
        except (KeyError, TypeError, ValueError) as error:  # a shape the schema allowed but the emulator cannot use
            return JSONResponse({"message": f"Invalid request: {error}"}, status_code=400)
        if result is None:
            return Response(status_code=200)
        return JSONResponse(result)

    return endpoint


STRIPE_DELIVERIES_PATH = "/_metronome/stripe-deliveries"
"""Not Metronome's: what the emulator has sent to Stripe, so tests and parity checks can see it (no auth)."""


def _stripe_deliveries(store: ObjectStore, engine: BillingEngine) -> Any:
    async def endpoint(request: Request) -> Response:
        def run() -> list[dict[str, Any]]:
            engine.catch_up_if_due()
            return store.all("stripe_delivery")

        deliveries = await run_in_threadpool(run)
        customer_id = request.query_params.get("customer_id")
        return JSONResponse([d for d in deliveries if customer_id in (None, d["customer_id"])])

    return endpoint


BILLABLE_STATUS_PATH = "/_metronome/billable-status"
"""Not Metronome's: a customer's billable-status changes, scheduled ones included (`?customer_id=`, no auth)."""


def _billable_status(store: ObjectStore) -> Any:
    async def endpoint(request: Request) -> Response:
        customer_id = request.query_params.get("customer_id", "")
        return JSONResponse(customers.billable_status_schedule(store, customer_id))

    return endpoint


def build_app(store: ObjectStore, engine: BillingEngine, now: Callable[[], float]) -> Starlette:
    routes = [Route(path, _endpoint(handler, store, engine, now), methods=[method]) for method, path, handler in ROUTES]
    routes.append(Route(STRIPE_DELIVERIES_PATH, _stripe_deliveries(store, engine), methods=["GET"]))
    routes.append(Route(BILLABLE_STATUS_PATH, _billable_status(store), methods=["GET"]))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return JSONResponse({"message": f"{request.method} {request.url.path}: not found"}, status_code=status)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
