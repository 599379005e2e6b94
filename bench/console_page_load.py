"""How long does the console take to show an execution with 5,000 history events?

Run: .venv/bin/python bench/console_page_load.py [--events 5000] [--runs 5]
One local stack (no emulators); an inline Map of Pass states sized to the event count; the page is loaded in
Debian's headless chromium, as the browser tests do. Reports, as medians over the runs: the server's answer (history
read through the Step Functions API and the page rendered, first uncached and then cached), the browser's load event,
and the moment the graph is drawn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from billmig_cli import executions
from billmig_cli.console.app import execution_path
from billmig_local.stack import LocalStack, StackSettings
from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Per item: MapIterationStarted, 2 x (PassStateEntered, PassStateExited), MapIterationSucceeded.
EVENTS_PER_ITEM = 6
FIXED_EVENTS = 8  # ExecutionStarted, Prepare entered/exited, Map entered/started/succeeded/exited, ExecutionSucceeded
DEFINITION = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Next": "Items"},
        "Items": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 40,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Shape",
                "States": {"Shape": {"Type": "Pass", "Next": "Keep"}, "Keep": {"Type": "Pass", "End": True}},
            },
            "End": True,
        },
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    items = max(1, (args.events - FIXED_EVENTS) // EVENTS_PER_ITEM)
    with LocalStack(StackSettings(state_dir=Path(tempfile.mkdtemp()), emulators=())) as stack:
        assert stack.console is not None
        sfn = stack.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="bench-console", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/bench"
        )["stateMachineArn"]
        began = time.perf_counter()
        arn = executions.start(sfn, machine, {"items": [{"n": n} for n in range(items)]}, "bench-console")
        result = executions.wait(sfn, arn, timeout=600)
        events = len(executions.history(sfn, arn))
        print(f"execution {result['status']}: {items} items, {events} events ({time.perf_counter() - began:.1f} s)")
        url = stack.console.url + execution_path(arn)
        start = time.perf_counter()
        executions.history(sfn, arn)
        print(f"history through get_execution_history alone: {(time.perf_counter() - start) * 1000:.0f} ms")

        first = time.perf_counter()
        html = httpx.get(url, timeout=120).text
        uncached = time.perf_counter() - first
        warm: list[float] = []
        for _ in range(args.runs):
            start = time.perf_counter()
            httpx.get(url, timeout=120).raise_for_status()
            warm.append(time.perf_counter() - start)
        print(
            f"server: first answer {uncached * 1000:.0f} ms (history read), then median "
            f"{statistics.median(warm) * 1000:.0f} ms; page {len(html) / 1e6:.2f} MB"
        )

        loaded: list[float] = []
        drawn: list[float] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            for _ in range(args.runs):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(url, wait_until="load", timeout=120_000)
                loaded.append(time.perf_counter() - start)
                page.wait_for_selector("#graph[data-rendered='1']", timeout=120_000)
                drawn.append(time.perf_counter() - start)
                rows = page.locator("#history tbody tr").count()
                page.close()
            browser.close()
        print(
            f"browser: load event median {statistics.median(loaded) * 1000:.0f} ms, graph drawn median "
            f"{statistics.median(drawn) * 1000:.0f} ms ({rows} history rows shown), over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
