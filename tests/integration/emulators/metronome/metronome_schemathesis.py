"""schemathesis over the operations the emulator implements, against the live server, from Metronome's document.

Shared by the two test modules (pricing operations; customers, contracts, usage and invoices), which are split only
so that `pytest --dist loadfile` can run them on two workers.

Checks: no 5xx on generated inputs, replies conform to the documented response schema, JSON content type.
`status_code_conformance` is not run: the published document omits statuses the real API returns (e.g. 404 on
`GET /v1/customers/{customer_id}`, 400 on most operations), so it would flag Metronome's own behaviour.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import schemathesis
from billmig_local.emulators.metronome.app import ROUTES
from billmig_local.emulators.metronome.openapi_validation import raw_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metronome_world import World, at, ingest, llm, make_catalogue, new_customer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

IMPLEMENTED = [(method, path) for method, path, _ in ROUTES]
EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


V2_DOCUMENTED_CODES = {"CustomerNotFound", "ContractNotFound"}


def _undocumented_v2_error_code(path: str, response: Any) -> bool:
    """v2 400 bodies are documented with `code` in {CustomerNotFound, ContractNotFound} only; the emulator also
    answers schema violations and business-rule errors there (code `ValidationError`, `invalid_threshold`, ...)."""
    if not path.startswith("/v2/") or response.status_code != 400:
        return False
    return response.json().get("code") not in V2_DOCUMENTED_CODES


@functools.cache
def metronome_schema() -> Any:
    """Loaded on first use (not at collection), once per worker process."""
    return schemathesis.openapi.from_dict(raw_document())


def schemathesis_ids(shared_world: World) -> dict[str, str]:
    """Real objects, so generated requests also reach the success paths (a finalized invoice included)."""
    client = shared_world.client
    cat = make_catalogue(client)
    customer = new_customer(client, "schemathesis")
    contract = client.v1.contracts.create(
        customer_id=customer,
        starting_at=at(1),
        rate_card_id=cat.rate_card_id,
        commits=[
            {
                "type": "PREPAID",
                "product_id": cat.commit_product_id,
                "priority": 1,
                "access_schedule": {
                    "schedule_items": [{"amount": 500, "starting_at": at(1), "ending_before": at(1, 6)}]
                },
                "invoice_schedule": {"schedule_items": [{"timestamp": at(1), "amount": 500}]},
            }
        ],
        credits=[
            {
                "product_id": cat.credit_product_id,
                "priority": 2,
                "access_schedule": {
                    "schedule_items": [{"amount": 300, "starting_at": at(1), "ending_before": at(1, 6)}]
                },
            }
        ],
    ).data.id
    shared_world.set_time(at(20))
    ingest(client, [llm("schemathesis", "st-1", at(10), "gpt-4", 1000), llm("schemathesis", "st-2", at(11), "x", 1)])
    shared_world.set_time(at(3, 2))
    invoice = client.v1.customers.invoices.list(customer_id=customer, type="USAGE").data[0]
    commit = client.v2.contracts.retrieve(customer_id=customer, contract_id=contract).data.commits[0]
    return {
        "customer_id": customer,
        "contract_id": contract,
        "rate_card_id": cat.rate_card_id,
        "product_id": cat.tokens_product_id,
        "billable_metric_id": cat.metric_id,
        "invoice_id": invoice.id,
        "commit_id": commit.id,
        "id": cat.tokens_product_id,
        "fixed_product_id": cat.commit_product_id,
    }


_FIXED_PRODUCT_FIELDS = ("commits", "credits", "add_commits", "add_credits", "commit")
"""Where a `product_id` must name a FIXED product (commits and credits), not the USAGE one."""


def _swap_ids(value: Any, known: dict[str, str], path: str, *, fixed: bool, top: bool) -> None:
    if isinstance(value, list):
        for item in value:
            _swap_ids(item, known, path, fixed=fixed, top=top)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key in known and isinstance(item, str) and (key != "id" or top):
            if key == "product_id" and fixed:
                value[key] = known["fixed_product_id"]
            elif key == "id" and "rate-cards" in path:
                value[key] = known["rate_card_id"]
            else:
                value[key] = known[key]
        elif key in ("starting_at", "ending_before") and isinstance(item, str) and not top:
            value[key] = _on_the_hour(item)  # access schedules are hour-aligned: let some commits through
        elif isinstance(item, dict | list):
            _swap_ids(item, known, path, fixed=fixed or key in _FIXED_PRODUCT_FIELDS, top=False)


def _on_the_hour(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    try:
        return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 has no UTC date: the emulator must refuse it as sent
        return text


def _with_known_ids(case: Any, known: dict[str, str], now: str, use: bool) -> Any:
    """Swap generated ids for real ones (half of the cases), keeping everything else schemathesis generated."""
    if not use:
        return case
    if case.path_parameters:
        for key in case.path_parameters:
            if key in known:
                case.path_parameters[key] = known[key]
    fixed = "customerCommits" in case.path or "customerCredits" in case.path
    _swap_ids(case.body, known, case.path, fixed=fixed, top=True)
    bodies = case.body if isinstance(case.body, list) else [case.body]
    for body in bodies:
        if isinstance(body, dict) and "timestamp" in body and case.path == "/v1/ingest":
            body["timestamp"] = now
    return case


def is_pricing(path: str) -> bool:
    return path.startswith(("/v1/billable-metrics", "/v1/contract-pricing"))


def check_operation(method: str, path: str, shared_world: World, known_ids: dict[str, str]) -> None:
    """Run `EXAMPLES` generated requests of one operation and apply `CHECKS`; prints the statuses it saw."""
    operation = metronome_schema()[path][method]
    headers = {"Authorization": "Bearer schemathesis"}
    now = shared_world.clock.now_datetime().isoformat()
    cases = st.tuples(operation.as_strategy(), st.booleans()).map(
        lambda pair: _with_known_ids(pair[0], known_ids, now, pair[1])
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: Any) -> None:
        response = case.call(base_url=shared_world.emulator.url, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if _undocumented_v2_error_code(path, response):
            assert response.status_code == 400 and response.json()["message"]
            return
        case.validate_response(response, checks=CHECKS)

    statuses: dict[int, int] = {}
    run()
    print(f"{method} {path}: {sum(statuses.values())} examples, statuses {dict(sorted(statuses.items()))}")
