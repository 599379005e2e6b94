"""`UsageTotals` on the two SDKs: Stripe's meter event summaries and Metronome's `usage/groups`.

Metronome's usage query takes UTC-midnight bounds, so the days the compared window only partly covers are asked for
in hourly windows and the whole days between them in daily ones (a month is then three short pages instead of
eight pages of hours); the windows inside the compared window are combined by the metric's aggregation (sum for
SUM/COUNT, the latest non-empty window for LATEST, the largest for MAX), which is what Stripe's summary computes
over the same hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

import stripe
from metronome import Metronome, omit

from billmig.adapters.metronome_sdk import midnight, typed_metronome_call
from billmig.adapters.stripe_sdk import throttle_retrying_http_client, typed_stripe_call
from billmig.errors import VendorRejected
from billmig.usage.mapping import MeterRule

WindowSize = Literal["HOUR", "DAY"]


def _segments(start: datetime, end: datetime) -> list[tuple[datetime, datetime, WindowSize]]:
    """Midnight-bounded queries covering [start, end): hourly for a partly covered day, daily for whole days."""
    first_whole, last_whole = midnight(start, up=True), midnight(end, up=False)
    if first_whole >= last_whole:
        return [(midnight(start, up=False), midnight(end, up=True), "HOUR")]
    segments: list[tuple[datetime, datetime, WindowSize]] = []
    if first_whole != start:
        segments.append((midnight(start, up=False), first_whole, "HOUR"))
    segments.append((first_whole, last_whole, "DAY"))
    if last_whole != end:
        segments.append((last_whole, midnight(end, up=True), "HOUR"))
    return segments


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class VendorUsageTotals:
    def __init__(self, stripe_client: stripe.StripeClient, metronome_client: Metronome) -> None:
        self._stripe = stripe_client
        self._metronome = metronome_client
        self._meter_id = cache(self._find_meter)
        self._metronome_customer = cache(self._find_customer)
        self._metric = cache(self._find_metric)

    @classmethod
    def connect(
        cls,
        stripe_key: str,
        stripe_base: str | None,
        metronome_token: str,
        metronome_base: str | None,
        *,
        retry_throttled: bool = False,
    ) -> VendorUsageTotals:
        """`retry_throttled`: Stripe's 429s retried in place too (every call here is a read)."""
        addresses: dict[str, str] = {"api": stripe_base, "meter_events": stripe_base} if stripe_base else {}
        http = {"http_client": throttle_retrying_http_client(), "max_network_retries": 4} if retry_throttled else {}
        return cls(
            stripe.StripeClient(stripe_key, base_addresses=addresses, **{"max_network_retries": 2, **http}),  # type: ignore[arg-type]
            Metronome(bearer_token=metronome_token, base_url=metronome_base or None, max_retries=2),
        )

    def stripe_total(self, stripe_customer_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal:
        meter = self._meter_id(rule.stripe_event_name)
        summaries = typed_stripe_call(
            f"event summaries of {rule.stripe_event_name} for {stripe_customer_id}",
            lambda: self._stripe.v1.billing.meters.event_summaries.list(
                meter,
                params={
                    "customer": stripe_customer_id,
                    "start_time": int(start.timestamp()),
                    "end_time": int(end.timestamp()),
                    "limit": 100,
                },
            ),
        )
        values = typed_stripe_call(  # later pages are fetched while iterating: typed too
            f"event summaries of {rule.stripe_event_name} for {stripe_customer_id}",
            lambda: [Decimal(str(s.aggregated_value)) for s in summaries.auto_paging_iter()],
        )
        return sum(values, Decimal(0))

    def metronome_total(self, internal_id: str, rule: MeterRule, start: datetime, end: datetime) -> Decimal:
        customer = self._metronome_customer(internal_id)
        if customer is None:
            return Decimal(0)
        metric_id, aggregation = self._metric(rule.metronome_billable_metric)
        keys = sorted(rule.match)

        def usage(starting_on: datetime, ending_before: datetime, window_size: WindowSize) -> list[Any]:
            pages = typed_metronome_call(
                f"usage of {rule.metronome_billable_metric} for {internal_id}",
                lambda: self._metronome.v1.usage.list_with_groups(
                    billable_metric_id=metric_id,
                    customer_id=customer,
                    window_size=window_size,
                    starting_on=starting_on,
                    ending_before=ending_before,
                    group_key=keys if keys else omit,
                ),
            )
            return typed_metronome_call(  # later pages are fetched while iterating: typed too
                f"usage of {rule.metronome_billable_metric} for {internal_id}", lambda: list(pages)
            )

        values: list[tuple[datetime, Decimal]] = []
        for segment in _segments(start, end):
            for row in usage(*segment):
                at = _instant(row.starting_on)
                if not start <= at < end or row.value is None:
                    continue
                if keys and row.group_value != rule.match[keys[0]]:
                    continue
                values.append((at, Decimal(str(row.value))))
        if not values:
            return Decimal(0)
        if aggregation == "LATEST":
            return max(values)[1]
        if aggregation == "MAX":
            return max(v for _, v in values)
        return sum((v for _, v in values), Decimal(0))

    def _find_meter(self, event_name: str) -> str:
        meters = typed_stripe_call("list meters", lambda: self._stripe.v1.billing.meters.list(params={"limit": 100}))
        for meter in meters.auto_paging_iter():
            if meter.event_name == event_name:
                return str(meter.id)
        raise VendorRejected(f"Stripe has no meter for event_name {event_name!r}")

    def _find_customer(self, alias: str) -> str | None:
        page = typed_metronome_call(
            f"find customer {alias}", lambda: self._metronome.v1.customers.list(ingest_alias=alias, limit=2)
        )
        found = [c.id for c in page.data if alias in (c.ingest_aliases or [])]
        return found[0] if found else None

    def _find_metric(self, name_or_id: str) -> tuple[str, str]:
        metrics = typed_metronome_call(
            "list billable metrics", lambda: list(self._metronome.v1.billable_metrics.list())
        )
        for metric in metrics:
            if name_or_id in (metric.id, metric.name):
                return metric.id, str(getattr(metric, "aggregation_type", None) or "COUNT").upper()
        raise VendorRejected(f"Metronome has no billable metric {name_or_id!r}")
