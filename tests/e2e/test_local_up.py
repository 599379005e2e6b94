"""`billmig local up` as operators run it: a separate process, reached by plain boto3 and by the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from suite import REPO, until

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, str]]]:
    state_dir = tmp_path_factory.mktemp("up")
    process = subprocess.Popen(
        [str(BIN / "billmig"), "local", "up", "--port", "0", "--state-dir", str(state_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    endpoints_file = state_dir / "endpoints.json"
    until(lambda: endpoints_file.exists() or process.poll() is not None, timeout=60, what="local up to start")
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    endpoints = json.loads(endpoints_file.read_text())
    yield process, state_dir, endpoints
    if process.poll() is None:
        process.kill()
        process.wait()


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        COLUMNS="250",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def test_plain_boto3_in_another_process_drives_the_local_stack(running: tuple) -> None:
    _, _, endpoints = running
    assert set(endpoints) == {"aws", "stripe", "metronome", "stigg", "console"}
    script = textwrap.dedent("""
        import json, time, boto3
        sfn, ddb = boto3.client("stepfunctions"), boto3.client("dynamodb")
        machines = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
        tables = ddb.list_tables()["TableNames"]
        arn = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
               if m["name"] == "billmig-preflight-local"][0]
        run = sfn.start_execution(stateMachineArn=arn, name="from-another-process", input=json.dumps(
            {"batch_id": "other", "not_before": "2000-01-01T00:00:00Z",
             "customers": [{"stripe_customer_id": "cus_Other1", "internal_customer_id": "o-1"}]}))
        for _ in range(600):
            status = sfn.describe_execution(executionArn=run["executionArn"])["status"]
            if status != "RUNNING":
                break
            time.sleep(0.05)
        history = sfn.get_execution_history(executionArn=run["executionArn"])["events"]
        print(json.dumps({"machines": machines, "tables": tables, "status": status,
                          "first": history[0]["type"], "last": history[-1]["type"]}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(endpoints["aws"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert seen == {
        "machines": [
            "billmig-metronome-migration-local",
            "billmig-parity-local",
            "billmig-preflight-local",
            "billmig-stigg-import-local",
        ],
        "tables": ["billmig-progress-local"],
        "status": "SUCCEEDED",
        "first": "ExecutionStarted",
        "last": "ExecutionSucceeded",
    }


def test_the_cli_starts_a_batch_reads_its_status_and_moves_the_clock(running: tuple, tmp_path: Path) -> None:
    _, state_dir, endpoints = running
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "batch_id": "cli-batch",
                "customers": [
                    {"stripe_customer_id": "cus_Cli001", "internal_customer_id": "c-1"},
                    {"stripe_customer_id": "cus_Cli002", "internal_customer_id": "c-2"},
                ],
            }
        )
    )
    env = _env(endpoints["aws"])
    cli = str(BIN / "billmig")
    started = subprocess.run(
        [cli, "batch", "start", "preflight", "--file", str(batch), "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    assert "SUCCEEDED" in started.stdout
    # locally, the execution's page in the stack's own console (on AWS: the Step Functions console)
    link = re.search(r"console (http://127\.0\.0\.1:\d+/executions/\S+)", started.stdout)
    assert link is not None and link.group(1).startswith(endpoints["console"]), started.stdout
    page = httpx.get(link.group(1), timeout=30)
    assert page.status_code == 200 and "cli-batch" in page.text
    status = subprocess.run(
        [cli, "batch", "status", "--batch-id", "cli-batch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert status.stdout.count("succeeded") == 2
    moved = subprocess.run(
        [cli, "local", "clock", "advance", "1d", "--state-dir", str(state_dir)],
        env={k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "moved 86400 s" in moved.stdout
    assert "schedule schedule/default/billmig-canary-local fired" in moved.stdout


def test_local_invoke_runs_a_sample_event_against_the_deployed_function(running: tuple) -> None:
    _, state_dir, _ = running
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    invoke = [str(BIN / "billmig"), "local", "invoke", "--state-dir", str(state_dir)]
    done = subprocess.run(
        [*invoke, "report_batch", "-e", "events/report_batch.json"],
        cwd=REPO,
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["batch_id"] == "wave-1"
    assert set(result["counts"]) == {"enrolled", "running", "succeeded", "failed"}
    assert '"step":"report"' in done.stdout and '"run_id":"wave-1"' in done.stdout  # log lines, tailed
    failed = subprocess.run(
        [*invoke, "stigg_import_report", "-e", "events/report_batch.json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "ValidationError" in failed.stdout
    unknown = subprocess.run(
        [*invoke, "no_such_function", "-e", "events/report_batch.json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "no function 'no_such_function'" in unknown.stdout


def test_a_bad_batch_file_starts_nothing(running: tuple, tmp_path: Path) -> None:
    _, _, endpoints = running
    batch = tmp_path / "bad.json"
    batch.write_text(json.dumps({"batch_id": "bad", "customers": [{"stripe_customer_id": "cus_Bad001"}]}))
    done = subprocess.run(
        [str(BIN / "billmig"), "batch", "start", "preflight", "--file", str(batch)],
        env=_env(endpoints["aws"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "record 0 (cus_Bad001): internal_customer_id: Field required" in done.stdout
    assert "nothing was started" in done.stdout


def test_billmig_console_serves_the_pages_from_any_endpoint(running: tuple) -> None:
    _, _, endpoints = running
    process = subprocess.Popen(
        [str(BIN / "billmig"), "console", "--port", "0", "--endpoint-url", endpoints["aws"]],
        env={**_env(endpoints["aws"]), "AWS_ENDPOINT_URL": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"console (http://127\.0\.0\.1:\d+)", first)
        assert found, first
        listing = httpx.get(found.group(1) + "/", timeout=30)
        assert listing.status_code == 200
        assert "billmig-preflight-local" in listing.text and "local stack" in listing.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_ctrl_c_stops_it_cleanly_and_it_printed_execution_events(running: tuple) -> None:
    process, _, endpoints = running
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=endpoints["aws"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    (arn,) = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"] == "billmig-preflight-local"
    ]
    run = sfn.start_execution(
        stateMachineArn=arn,
        name="before-ctrl-c",
        input=json.dumps(
            {
                "batch_id": "ctrl-c",
                "not_before": "2000-01-01T00:00:00Z",
                "customers": [{"stripe_customer_id": "cus_CtrlC01", "internal_customer_id": "k-1"}],
            }
        ),
    )
    until(
        lambda: sfn.describe_execution(executionArn=run["executionArn"])["status"] != "RUNNING",
        timeout=60,
        what="the execution to end",
    )
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "local AWS http://127.0.0.1:" in output
    assert f"console    {endpoints['console']}" in output
    assert "billmig-preflight-local/before-ctrl-c #1 ExecutionStarted" in output
    assert re.search(r"billmig-preflight-local/before-ctrl-c #\d+ ExecutionSucceeded", output)
    assert "stopping" in output
