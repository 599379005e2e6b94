"""`billmig local up` as operators run it: a separate process, reached by plain boto3 and by the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from billmig_cli.main import app
from billmig_local.lambda_bridge import DEFAULT_CONCURRENCY
from billmig_local.packaging import zip_folder
from botocore.config import Config
from botocore.exceptions import ClientError
from suite import REPO, until
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

BIN = Path(sys.executable).parent
# Above every Map of this module's executions (the Stigg import's are 2 wide), below the default of 10: a function
# with no ReservedConcurrentExecutions is throttled past it only if the flag reached the stack's Lambda bridge.
LAMBDA_CONCURRENCY = 3


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, str]]]:
    state_dir = tmp_path_factory.mktemp("up")
    up = [str(BIN / "billmig"), "local", "up", "--port", "0", "--state-dir", str(state_dir)]
    process = subprocess.Popen(
        [*up, "--lambda-concurrency", str(LAMBDA_CONCURRENCY)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    endpoints_file = state_dir / "endpoints.json"

    def written() -> dict[str, str] | None:
        """The endpoints once the file holds them: it exists, empty, a moment before it is written."""
        try:
            found: dict[str, str] = json.loads(endpoints_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return found

    try:
        until(lambda: written() or process.poll() is not None, timeout=60, what="local up to start")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        endpoints = written()
        assert endpoints is not None
        yield process, state_dir, endpoints
    finally:  # also when it failed to start in time: never leave a stack running
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


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_plain_boto3_in_another_process_drives_the_local_stack(running: tuple) -> None:
    _, _, endpoints = running
    assert set(endpoints) == {"aws", "stripe", "metronome", "stigg", "console"}
    script = textwrap.dedent("""
        import json, time, boto3
        sfn, ddb, s3 = boto3.client("stepfunctions"), boto3.client("dynamodb"), boto3.client("s3")
        machines = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
        tables = ddb.list_tables()["TableNames"]
        outputs = {o["OutputKey"]: o["OutputValue"]
                   for o in boto3.client("cloudformation").describe_stacks(StackName="billmig")["Stacks"][0]["Outputs"]}
        s3.put_object(Bucket=outputs["ImportBucketName"], Key="metronome/other/customers.json", Body=b"[]")
        run = sfn.start_execution(stateMachineArn=outputs["MetronomeMigrationStateMachineArn"],
            name="from-another-process", input=json.dumps({"batch_id": "other", "bucket": outputs["ImportBucketName"],
            "customers_key": "metronome/other/customers.json", "run_key": "metronome/other/run.json",
            "max_concurrency": 1, "cutover_concurrency": 1,
            "cutover_at": "2000-01-01T00:00:00Z"}))
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
            "billmig-stigg-import-local",
        ],
        "tables": ["billmig-progress-local"],
        "status": "SUCCEEDED",
        "first": "ExecutionStarted",
        "last": "ExecutionSucceeded",
    }


def test_the_cli_starts_an_import_links_its_page_and_moves_the_clock(running: tuple, tmp_path: Path) -> None:
    _, state_dir, endpoints = running
    env = _env(endpoints["aws"])
    cli = str(BIN / "billmig")
    started = subprocess.run(
        [
            cli, "stigg", "import", "--customers-file", str(REPO / "events" / "stigg" / "customers.json"),
            "--import-id", "cli-import", "--report-dir", str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert "completed" in started.stdout and "with errors" not in started.stdout
    # locally, the execution's page in the stack's own console (on AWS: the Step Functions console)
    link = re.search(r"console (http://127\.0\.0\.1:\d+/executions/\S+)", started.stdout)
    assert link is not None and link.group(1).startswith(endpoints["console"]), started.stdout
    page = httpx.get(link.group(1), timeout=30)
    assert page.status_code == 200 and "cli-import" in page.text
    moved = subprocess.run(
        [cli, "local", "clock", "advance", "1d", "--state-dir", str(state_dir)],
        env={k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "moved 86400 s" in moved.stdout


def test_local_invoke_runs_a_sample_event_against_the_deployed_function(running: tuple) -> None:
    _, state_dir, _ = running
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    invoke = [str(BIN / "billmig"), "local", "invoke", "--state-dir", str(state_dir)]
    done = subprocess.run(
        [*invoke, "record_failure", "-e", "events/record_failure.json"],
        cwd=REPO,
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["batch_id"] == "wave-1" and result["step"] == "metronome.contract"
    assert result["error_type"] == "ForeignContract"
    assert '"step":"record_failure"' in done.stdout and '"run_id":"wave-1"' in done.stdout  # log lines, tailed
    failed = subprocess.run(
        [*invoke, "stigg_import_report", "-e", "events/record_failure.json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "ValidationError" in failed.stdout
    unknown = subprocess.run(
        [*invoke, "no_such_function", "-e", "events/record_failure.json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "no function 'no_such_function'" in unknown.stdout


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
        assert "billmig-metronome-migration-local" in listing.text and "local stack" in listing.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_the_lambda_concurrency_flag_is_the_limit_of_a_function_with_no_reserved_concurrency(
    running: tuple, tmp_path: Path
) -> None:
    _, _, endpoints = running
    iam = _client("iam", endpoints["aws"])
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"probe-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    lam = boto3.client(
        "lambda",
        endpoint_url=endpoints["aws"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=120),
    )
    name = f"probe-hold-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="probe.hold",
        Code={"ZipFile": zip_folder(REPO / "tests" / "integration" / "probe_function")},
        Timeout=30,
    )
    assert "Concurrency" not in lam.get_function(FunctionName=name)  # no reserved concurrency
    folders = [tmp_path / f"holder-{i}" for i in range(LAMBDA_CONCURRENCY + 1)]
    for folder in folders:
        folder.mkdir()
    *held, extra = folders

    def hold(folder: Path) -> None:
        lam.invoke(FunctionName=name, Payload=json.dumps({"folder": str(folder)}))

    holders = [threading.Thread(target=hold, args=(folder,)) for folder in held]
    for holder in holders:
        holder.start()
    try:
        until(lambda: all((f / "held").exists() for f in held), timeout=60, what="every environment to be held")
        with pytest.raises(ClientError) as throttled:
            lam.invoke(FunctionName=name, Payload=json.dumps({"folder": str(extra)}))
    finally:
        for folder in folders:
            (folder / "release").touch()
        for holder in holders:
            holder.join(timeout=60)
        lam.delete_function(FunctionName=name)
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert not (extra / "held").exists()


def test_the_lambda_concurrency_of_local_up_defaults_to_the_bridges_ten_and_is_at_least_one() -> None:
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    local = group.commands["local"]
    assert isinstance(local, TyperGroup)
    (option,) = [p for p in local.commands["up"].params if p.name == "lambda_concurrency"]
    assert option.opts == ["--lambda-concurrency"]
    assert option.default == DEFAULT_CONCURRENCY == 10  # what the integration tests see throttle the eleventh call
    refused = CliRunner().invoke(app, ["local", "up", "--port", "0", "--lambda-concurrency", "0"])
    assert refused.exit_code == 2  # refused before any stack starts
    assert "--lambda-concurrency" in refused.output


def test_ctrl_c_stops_it_cleanly_and_it_printed_execution_events(running: tuple) -> None:
    process, _, endpoints = running
    sfn = _client("stepfunctions", endpoints["aws"])
    (stack,) = _client("cloudformation", endpoints["aws"]).describe_stacks(StackName="billmig")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    bucket = outputs["ImportBucketName"]
    _client("s3", endpoints["aws"]).put_object(Bucket=bucket, Key="metronome/ctrl-c/customers.json", Body=b"[]")
    run = sfn.start_execution(
        stateMachineArn=outputs["MetronomeMigrationStateMachineArn"],
        name="before-ctrl-c",
        input=json.dumps(
            {
                "batch_id": "ctrl-c",
                "bucket": bucket,
                "customers_key": "metronome/ctrl-c/customers.json",
                "run_key": "metronome/ctrl-c/run.json",
                "max_concurrency": 1,
                "cutover_concurrency": 1,
                "cutover_at": "2000-01-01T00:00:00Z",
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
    assert "billmig-metronome-migration-local/before-ctrl-c #1 ExecutionStarted" in output
    assert re.search(r"billmig-metronome-migration-local/before-ctrl-c #\d+ ExecutionSucceeded", output)
    assert "stopping" in output
