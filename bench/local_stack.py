"""How fast is the local AWS? Stack start-up, and customers per second through the preflight state machine.

Run: .venv/bin/python bench/local_stack.py [--customers 100 500]
Bounded: one stack, a few batches, each with a timeout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from billmig_cli import executions
from billmig_local.stack import LocalStack, StackSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args()
    began = time.perf_counter()
    with LocalStack(StackSettings(state_dir=Path(tempfile.mkdtemp()), emulators=())) as stack:
        up = time.perf_counter() - began
        print(f"stack up (package + translate + create_stack): {up:.2f} s")
        sfn = stack.client("stepfunctions")
        arn = stack.outputs["PreflightStateMachineArn"]
        for size in args.customers:
            batch = {
                "batch_id": f"bench-{size}",
                "not_before": "2000-01-01T00:00:00Z",
                "customers": [
                    {"stripe_customer_id": f"cus_Bench{n:06d}", "internal_customer_id": f"b-{n}"} for n in range(size)
                ],
            }
            start = time.perf_counter()
            execution = executions.start(sfn, arn, batch, f"bench-{size}")
            result = executions.wait(sfn, execution, timeout=900)
            seconds = time.perf_counter() - start
            report = json.loads(result["output"])["report"]["counts"]
            events = len(executions.history(sfn, execution))
            print(
                f"preflight {size:>5} customers: {result['status']} in {seconds:6.1f} s "
                f"= {size / seconds:6.1f} customers/s, {events} history events, counts {report}"
            )


if __name__ == "__main__":
    main()
