"""How fast is the Stripe emulator? Requests per second through the official SDK, and the seeded book's size.

Run: .venv/bin/python bench/stripe_emulator.py [--requests 2000] [--threads 1 4] [--customers 1000] [--workers 4]
Bounded: a fixed number of requests per measurement, one book of --customers customers (0 skips it).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import stripe
from billmig_local.clock import WorldClock
from billmig_local.emulators.stripe import advance_test_clocks, start
from billmig_local.emulators.stripe.book_of_business import counts, ensure_catalogue, populate


def client_for(url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_bench", base_addresses={"api": url, "meter_events": url}, max_network_retries=0)


def rate(label: str, total: int, threads: int, call: Callable[[stripe.StripeClient, int], object], url: str) -> None:
    local = threading.local()

    def one(n: int) -> None:
        if not hasattr(local, "client"):
            local.client = client_for(url)
        call(local.client, n)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(total)))
    seconds = time.perf_counter() - began
    print(f"{label:<28} {threads} threads: {total} requests in {seconds:6.2f} s = {total / seconds:7.1f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp())
    clock = WorldClock(state_dir / "clock.json")
    emulator = start(clock=clock, state_dir=state_dir)
    url = emulator.url
    try:
        c = client_for(url).v1
        meter = c.billing.meters.create(
            params={"display_name": "bench", "event_name": "bench.event", "default_aggregation": {"formula": "sum"}}
        )
        customer = c.customers.create(params={"name": "bench"}).id
        print(f"meter {meter.id}, customer {customer}")
        for threads in args.threads:

            def event(client: stripe.StripeClient, n: int, threads: int = threads) -> object:
                return client.v1.billing.meter_events.create(
                    params={
                        "event_name": "bench.event",
                        "payload": {"stripe_customer_id": customer, "value": "1"},
                        "identifier": f"bench-{threads}-{n}",
                    }
                )

            def create_customer(client: stripe.StripeClient, n: int) -> object:
                return client.v1.customers.create(params={"email": f"bench{n}@example.com", "metadata": {"n": str(n)}})

            def retrieve_customer(client: stripe.StripeClient, n: int) -> object:
                return client.v1.customers.retrieve(customer)

            rate("meter events (POST)", args.requests, threads, event, url)
            session = client_for(url).v2.billing.meter_event_session.create().authentication_token

            def stream(client: stripe.StripeClient, n: int, threads: int = threads, token: str = session) -> object:
                events = [
                    {
                        "event_name": "bench.event",
                        "payload": {"stripe_customer_id": customer, "value": "1"},
                        "identifier": f"stream-{threads}-{n}-{k}",
                    }
                    for k in range(100)
                ]
                client.v2.billing.meter_event_stream.create(params={"events": events}, options={"api_key": token})  # type: ignore[typeddict-item]
                return None

            rate("v2 stream (100 events each)", args.requests // 20, threads, stream, url)
            rate("customer creates (POST)", args.requests, threads, create_customer, url)
            rate("customer retrieves (GET)", args.requests, threads, retrieve_customer, url)

        if args.customers:
            began = time.perf_counter()
            client = client_for(url)
            book = ensure_catalogue(client, int(clock.now()) // 3600 * 3600)
            seeded = populate(client, book, customers=args.customers, seed=7, workers=args.workers)
            seeding = time.perf_counter() - began
            requests = sum(s.requests for s in seeded)
            tally = counts(client, book, seeded)
            print(
                f"seeded book, {args.customers} customers, {args.workers} workers: {seeding:.1f} s "
                f"({requests} SDK writes, {requests / seeding:.0f}/s)"
            )
            for name, count in tally.items():
                print(f"  {name:<36} {count:>8}")
            profiles: dict[str, int] = {}
            for s in seeded:
                profiles[s.profile] = profiles.get(s.profile, 0) + 1
            print("  profiles: " + ", ".join(f"{k} {v}" for k, v in sorted(profiles.items())))
            before = sum(1 for _ in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter())
            began = time.perf_counter()
            clock.advance(31 * 86400)
            moved = advance_test_clocks(url, 31 * 86400)
            took = time.perf_counter() - began
            after = sum(1 for _ in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter())
            print(f"  clock +31 d: {moved} test clocks advanced, {after - before} invoices issued, {took:.1f} s")
            size = (state_dir / "stripe" / "state.sqlite").stat().st_size
            print(f"  state.sqlite: {size / 1e6:.1f} MB")
    finally:
        emulator.server.stop()
        emulator.extra["store"].close()


if __name__ == "__main__":
    main()
