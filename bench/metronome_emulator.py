"""How fast is the Metronome emulator? Ingest (100-event batches) and customer creates, through metronome-sdk.

The emulator runs in its own process (as under `billmig local up`, with its SQLite state dir), the clients in this
one, a few threads each with its own SDK client. Fixed amounts of work, so the run is bounded.

Run: .venv/bin/python bench/metronome_emulator.py [--threads 4] [--batches 400] [--customers 800]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from metronome import Metronome

START = datetime(2030, 1, 1, tzinfo=UTC)


def serve(state_dir: Path) -> None:
    """Child process: start the emulator, print its URL, run until stdin closes."""
    from billmig_local.clock import WorldClock
    from billmig_local.emulators.metronome import start

    emulator = start(clock=WorldClock(state_dir / "clock.json", start_at=START.timestamp()), state_dir=state_dir)
    print(emulator.url, flush=True)
    sys.stdin.read()
    emulator.server.stop()


def timed(label: str, requests: int, threads: int, unit: str, per_request: int, work: Callable[[int], None]) -> None:
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(requests)))
    seconds = time.perf_counter() - began
    line = f"{label}: {requests} requests in {seconds:.2f} s = {requests / seconds:.0f} requests/s"
    if per_request > 1:
        line += f" ({requests * per_request / seconds:.0f} {unit}/s)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", tempfile.mkdtemp(prefix="metronome-bench-")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        clients = [Metronome(bearer_token="bench", base_url=url, max_retries=0) for _ in range(args.threads)]
        print(f"emulator {url}, {args.threads} client threads", flush=True)
        clients[0].v1.billable_metrics.create(
            name="API calls", event_type_filter={"in_values": ["api_call"]}, aggregation_type="COUNT"
        )
        clients[0].v1.customers.create(name="Bench", ingest_aliases=["bench"])
        when = START.isoformat()

        def ingest(n: int) -> None:
            batch = [
                {"customer_id": "bench", "event_type": "api_call", "timestamp": when, "transaction_id": f"{n}-{i}"}
                for i in range(100)
            ]
            clients[n % args.threads].v1.usage.ingest(usage=batch)  # type: ignore[arg-type]

        def create_customer(n: int) -> None:
            clients[n % args.threads].v1.customers.create(name=f"Customer {n}", ingest_aliases=[f"bench-{n}"])

        timed("ingest, 100-event batches", args.batches, args.threads, "events", 100, ingest)
        timed("customers.create", args.customers, args.threads, "customers", 1, create_customer)
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
