"""How fast is the local AWS? Stack start-up; a Map whose Task waits on a vendor, at three concurrencies.

The Map runs N customers through a Task that reads each one from the Stripe emulator, which answers after a set
latency (50 ms by default), with MaxConcurrency 1, 10 and 40: what Step Functions' concurrency buys once the
Lambdas run in parallel execution environments. Each concurrency first runs one warm-up execution as wide as itself,
so the figure is for warm environments.

Run: .venv/bin/python bench/local_stack.py [--customers 100] [--latency-ms 50] [--concurrency 1 10 40]
Bounded: one stack, a few executions, each with a timeout.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from billmig_cli import executions
from billmig_local.packaging import zip_folder
from billmig_local.stack import LocalStack, StackSettings

FUNCTION = Path(__file__).parent / "vendor_call_function"
KEY = "sk_test_local"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def deploy_vendor_call(stack: LocalStack, vendor_url: str, concurrency: int) -> tuple[str, str]:
    role = stack.client("iam").create_role(RoleName="bench-vendor-call", AssumeRolePolicyDocument=json.dumps(TRUST))
    role_arn = role["Role"]["Arn"]
    lam = stack.client("lambda")
    created = lam.create_function(
        FunctionName="bench-vendor-call",
        Runtime="python3.11",
        Role=role_arn,
        Handler="vendor_call.handler",
        Code={"ZipFile": zip_folder(FUNCTION)},
        Timeout=30,
        Environment={"Variables": {"VENDOR_URL": vendor_url, "VENDOR_KEY": KEY}},
    )
    lam.put_function_concurrency(FunctionName="bench-vendor-call", ReservedConcurrentExecutions=concurrency)
    return created["FunctionArn"], role_arn


def map_machine(stack: LocalStack, function_arn: str, role_arn: str, concurrency: int) -> str:
    definition = {
        "StartAt": "Customers",
        "States": {
            "Customers": {
                "Type": "Map",
                "ItemsPath": "$.customers",
                "ItemSelector": {"customer.$": "$$.Map.Item.Value"},
                "MaxConcurrency": concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "ReadCustomer",
                    "States": {"ReadCustomer": {"Type": "Task", "Resource": function_arn, "End": True}},
                },
                "End": True,
            }
        },
    }
    created = stack.client("stepfunctions").create_state_machine(
        name=f"bench-map-{concurrency}-{uuid.uuid4().hex[:6]}", definition=json.dumps(definition), roleArn=role_arn
    )
    return str(created["stateMachineArn"])


def run(sfn: Any, machine: str, customers: list[str]) -> tuple[str, float]:
    """The execution's own start-to-stop time (not the polling client's, which overshoots by up to its interval)."""
    execution = executions.start(sfn, machine, {"customers": customers}, f"bench-{uuid.uuid4().hex[:10]}")
    result = executions.wait(sfn, execution, timeout=900)
    return str(result["status"]), (result["stopDate"] - result["startDate"]).total_seconds()


@dataclass(frozen=True)
class VendorMap:
    customer: str
    function_arn: str
    role_arn: str


def prepare_vendor_map(stack: LocalStack, *, latency_ms: float, concurrency: int) -> VendorMap:
    """One Stripe customer to read, the emulator's latency set, the Task's function deployed."""
    stripe = stack.emulators["stripe"].url
    headers = {"Authorization": f"Bearer {KEY}"}
    customer = httpx.post(f"{stripe}/v1/customers", data={"name": "Bench"}, headers=headers, timeout=60).json()["id"]
    httpx.post(f"{stripe}/_emulator/latency", json={"ms": latency_ms}, timeout=60).raise_for_status()
    function_arn, role_arn = deploy_vendor_call(stack, stripe, concurrency)
    return VendorMap(customer, function_arn, role_arn)


def measure_vendor_map(stack: LocalStack, prepared: VendorMap, *, size: int, concurrency: int) -> float:
    """Customers per second through the Map at this concurrency, after a warm-up as wide as the Map."""
    sfn = stack.client("stepfunctions")
    machine = map_machine(stack, prepared.function_arn, prepared.role_arn, concurrency)
    run(sfn, machine, [prepared.customer] * concurrency)
    status, seconds = run(sfn, machine, [prepared.customer] * size)
    if status != "SUCCEEDED":
        raise RuntimeError(f"the Map at concurrency {concurrency} ended {status}")
    return size / seconds


def vendor_map(stack: LocalStack, *, size: int, latency_ms: float, concurrencies: list[int]) -> None:
    prepared = prepare_vendor_map(stack, latency_ms=latency_ms, concurrency=max(concurrencies))
    first: float | None = None
    for concurrency in concurrencies:
        rate = measure_vendor_map(stack, prepared, size=size, concurrency=concurrency)
        first = first or rate
        print(
            f"Map of {size} customers, Task waits {latency_ms:.0f} ms on the Stripe emulator, "
            f"MaxConcurrency {concurrency:>3}: {rate:6.1f} customers/s ({rate / first:.1f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100, help="customers in the vendor Map")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the Stripe emulator's added latency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 40], help="the Map's MaxConcurrency")
    args = parser.parse_args()
    began = time.perf_counter()
    settings = StackSettings(state_dir=Path(tempfile.mkdtemp()), emulators=("stripe",))
    with LocalStack(settings) as stack:
        print(f"stack up (package + translate + create_stack): {time.perf_counter() - began:.2f} s")
        vendor_map(stack, size=args.customers, latency_ms=args.latency_ms, concurrencies=args.concurrency)


if __name__ == "__main__":
    main()
