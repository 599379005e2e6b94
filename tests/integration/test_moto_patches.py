"""Each moto patch, shown by the behaviour it provides on the deployed stack (each assertion fails without it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from billmig_local import moto_patches
from billmig_local.stack import LocalStack
from suite import REPO, until


def test_every_patch_is_installed_and_documented(local_stack: LocalStack) -> None:
    assert moto_patches.installed() == {p.name for p in moto_patches.PATCHES}
    assert all(p.gap for p in moto_patches.PATCHES)


def _failure_event(batch_id: str) -> dict[str, Any]:
    event = json.loads((REPO / "events" / "record_failure.json").read_text())
    return {**event, "batch_id": batch_id}


def test_lambda_bridge_runs_the_deployed_code(local_stack: LocalStack) -> None:
    lam = local_stack.client("lambda")
    response = lam.invoke(FunctionName="billmig-record-failure-local", Payload=json.dumps(_failure_event("bridge")))
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert (result["customer_id"], result["status"], result["error_type"]) == (
        "cus_Wave1Customer01",
        "failed",
        "ForeignContract",
    )


def test_lambda_bridge_reports_the_exception_class_as_error_type(local_stack: LocalStack) -> None:
    lam = local_stack.client("lambda")
    event = json.loads((REPO / "events" / "metronome_snapshot.json").read_text())
    response = lam.invoke(FunctionName="billmig-metronome-snapshot-local", Payload=json.dumps(event))
    assert response["FunctionError"] == "Handled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "InvalidImportFile"  # no run document was stored for this batch
    assert payload["errorMessage"].endswith(f"/{event['run_key']}: no such file")


def test_lambda_logs_reach_cloudwatch_logs(local_stack: LocalStack) -> None:
    local_stack.client("lambda").invoke(
        FunctionName="billmig-record-failure-local", Payload=json.dumps(_failure_event("logs"))
    )
    logs = local_stack.client("logs")
    group = "/aws/lambda/billmig-record-failure-local"
    messages = [
        json.loads(e["message"])
        for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
        for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
        if e["message"].startswith("{")
    ]
    assert any(m.get("run_id") == "logs" and m.get("step") == "record_failure" for m in messages)


def test_state_machines_are_in_the_executing_backend_with_substitutions(local_stack: LocalStack, sfn: Any) -> None:
    arn = local_stack.outputs["MetronomeMigrationStateMachineArn"]
    assert arn in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    assert "${" not in definition
    assert "function:billmig-metronome-snapshot-local" in definition
    assert "$$.Execution.Name" in definition  # `$$` survives (no Fn::Sub on the definition)


def test_layer_ref_and_function_layers(local_stack: LocalStack) -> None:
    layer_arn = local_stack.outputs["SharedLayerArn"]
    assert layer_arn.startswith("arn:aws:lambda:us-east-1:") and ":layer:billmig-shared-local:" in layer_arn
    config = local_stack.client("lambda").get_function(FunctionName="billmig-record-failure-local")["Configuration"]
    assert [layer["Arn"] for layer in config["Layers"]] == [layer_arn]


def test_scheduler_schedules_are_created(local_stack: LocalStack) -> None:
    """A stack of its own holding one (disabled) `AWS::Scheduler::Schedule`, as SAM's `ScheduleV2` makes."""
    target = local_stack.outputs["StiggImportStateMachineArn"]
    template = {
        "Resources": {
            "PatchTestSchedule": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "Name": "PatchTestSchedule",
                    "ScheduleExpression": "cron(0 6 * * ? *)",
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "State": "DISABLED",
                    "Target": {"Arn": target, "RoleArn": "arn:aws:iam::123456789012:role/x", "Input": "{}"},
                },
            }
        }
    }
    cloudformation = local_stack.client("cloudformation")
    cloudformation.create_stack(StackName="patch-test-schedules", TemplateBody=json.dumps(template))
    try:
        schedule = local_stack.client("scheduler").get_schedule(Name="PatchTestSchedule")
        assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
        assert schedule["Target"]["Arn"] == target
    finally:
        cloudformation.delete_stack(StackName="patch-test-schedules")


def test_executions_without_a_name_get_a_unique_one(local_stack: LocalStack, sfn: Any) -> None:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(
        name="patch-test-unnamed", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    assert not first.endswith(":None")
    assert first != second


def test_point_in_time_recovery_follows_the_template(local_stack: LocalStack, dynamodb: Any) -> None:
    backups = dynamodb.describe_continuous_backups(TableName=local_stack.outputs["ProgressTableName"])
    status = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
    assert status == "ENABLED"


@pytest.mark.parametrize("patch", [p.name for p in moto_patches.PATCHES])
def test_each_patch_names_the_gap_it_closes(patch: str) -> None:
    found = [p for p in moto_patches.PATCHES if p.name == patch]
    assert len(found) == 1 and len(found[0].gap) > 20


# `lambda_task_service_errors` and the bridge's execution environments are shown in test_lambda_environments.py
# (a throttle reaching Step Functions as Lambda.TooManyRequestsException; concurrency, timeouts, crashes, logs).


def test_sqs_event_sources_are_left_to_the_local_poller(local_stack: LocalStack) -> None:
    from moto.sqs.models import sqs_backends

    mappings = local_stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    [usage] = [m for m in mappings if m["EventSourceArn"].endswith(":billmig-usage-local")]
    assert usage["BatchSize"] == 100 and usage["MaximumBatchingWindowInSeconds"] == 1
    assert usage["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = sqs_backends["123456789012"][local_stack.settings.region].queues["billmig-usage-local"]
    assert queue.lambda_event_source_mappings == {}  # so send_message only enqueues
    assert local_stack.poller is not None and [m.uuid for m in local_stack.poller.mappings()] == [usage["UUID"]]


def test_sqs_visibility_and_redrive_behave_as_the_poller_relies_on(local_stack: LocalStack) -> None:
    from suite import until

    sqs = local_stack.client("sqs")
    dlq = sqs.create_queue(QueueName="patch-test-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    queue = sqs.create_queue(QueueName="patch-test", Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "1"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=queue, MessageBody="once")
    for _ in range(2):  # received twice, never deleted
        until(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), timeout=10, what="visible again")
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None  # in flight

    def redriven() -> bool:  # as in SQS, the move happens when the message would be received a third time
        assert sqs.receive_message(QueueUrl=queue).get("Messages") is None
        return [m["Body"] for m in sqs.receive_message(QueueUrl=dlq).get("Messages", [])] == ["once"]

    until(redriven, timeout=10, what="the redrive to the dead-letter queue after maxReceiveCount")


def test_dynamodb_item_operations_answer_every_attribute_type_as_written(local_stack: LocalStack) -> None:
    """`dynamodb_items_serialized_directly` writes item results as JSON itself: each operation's items come back as
    they went in (binary, sets, nested maps and lists included), and errors keep DynamoDB's error shape."""
    ddb = local_stack.client("dynamodb")
    table = "patch-test-items"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    item: dict[str, Any] = {
        "pk": {"S": "run"},
        "sk": {"S": "cus_1"},
        "amount": {"N": "-1570.17"},
        "blob": {"B": b"\x00\xffbytes"},
        "ok": {"BOOL": True},
        "nothing": {"NULL": True},
        "tags": {"SS": ["a", "b"]},
        "counts": {"NS": ["1", "2"]},
        "blobs": {"BS": [b"x", b"y"]},
        "steps": {"M": {"snapshot": {"M": {"status": {"S": "SUCCEEDED"}, "ids": {"L": [{"S": "i"}, {"N": "3"}]}}}}},
    }
    key = {"pk": item["pk"], "sk": item["sk"]}

    def same(found: dict[str, Any]) -> None:
        as_sets = {"tags", "counts", "blobs"}
        scalars = {k: v for k, v in item.items() if k not in as_sets}
        assert {k: v for k, v in found.items() if k not in as_sets} == scalars
        assert {k: sorted(next(iter(found[k].values()))) for k in as_sets} == {
            k: sorted(next(iter(item[k].values()))) for k in as_sets
        }

    assert ddb.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD").get("Attributes") is None
    same(ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])
    found = ddb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "run"}}
    )
    assert (found["Count"], found["ScannedCount"]) == (1, 1)
    same(found["Items"][0])
    same(ddb.scan(TableName=table)["Items"][0])
    same(ddb.batch_get_item(RequestItems={table: {"Keys": [key]}})["Responses"][table][0])
    same(ddb.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}])["Responses"][0]["Item"])
    updated = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET ok = :no",
        ExpressionAttributeValues={":no": {"BOOL": False}},
        ReturnValues="UPDATED_NEW",
    )
    assert updated["Attributes"] == {"ok": {"BOOL": False}}
    ddb.put_item(TableName=table, Item={"pk": {"S": "run"}, "sk": {"S": "cus_2"}})
    paged = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "run"}},
        Limit=1,
        ReturnConsumedCapacity="TOTAL",
    )
    assert paged["LastEvaluatedKey"] == key and paged["ConsumedCapacity"]["TableName"] == table
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    deleted = ddb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert deleted["ok"] == {"BOOL": False}
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    ddb.delete_table(TableName=table)


def test_dynamodb_items_over_the_size_limit_are_refused_as_dynamodb_does(local_stack: LocalStack) -> None:
    """`dynamodb_item_sized_once` sizes a new item once: an item of many attributes just under moto's limit is
    stored whole, one byte-wise over it is refused with DynamoDB's validation error, and the table keeps the first."""
    ddb = local_stack.client("dynamodb")
    table = "patch-test-item-size"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # 40 attributes "a00".."a39" of 10,000 bytes each, in a map too: 2 + 2 + 40 * (3 + 10,000) = 400,124 bytes
    filler = {f"a{i:02d}": {"S": "x" * 10_000} for i in range(40)}
    fits = {"pk": {"S": "k"}, **dict(list(filler.items())[:39]), "m": {"M": {"a39": filler["a39"]}}}
    ddb.put_item(TableName=table, Item=fits)
    stored = ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"]
    assert stored == fits
    too_large = {**fits, "extra": {"S": "y" * 5_000}}
    with pytest.raises(ddb.exceptions.ClientError) as refused:
        ddb.put_item(TableName=table, Item=too_large)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in refused.value.response["Error"]["Message"]
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"] == fits
    ddb.delete_table(TableName=table)


def test_dynamodb_queries_on_the_key_answer_their_partition_as_dynamodb_does(local_stack: LocalStack) -> None:
    """`dynamodb_query_reads_one_partition` gives a key query its partition alone: each answers exactly its
    partition's items in range-key order (reversed, prefixed, filtered, paged), an unknown partition answers none and
    adds nothing, a hash-only table answers its item, and an index query still spans the partitions."""
    ddb = local_stack.client("dynamodb")
    table, flat = "patch-test-partitions", "patch-test-partitions-flat"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk", "state")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-state",
                "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=flat,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for sk in ("period#2027-02", "approval#1", "period#2027-01", "period#2026-12"):
        for pk in ("cus_c", "cus_a", "cus_b"):
            state = "held" if sk == "period#2027-01" and pk != "cus_c" else "passed"
            item = {"pk": {"S": pk}, "sk": {"S": sk}, "state": {"S": state}}
            ddb.put_item(TableName=table, Item=item)
    ddb.put_item(TableName=flat, Item={"pk": {"S": "only"}, "n": {"N": "1"}})

    def keys(**query: Any) -> list[str]:
        found: list[str] = []
        for page in ddb.get_paginator("query").paginate(TableName=table, **query):
            found += [f"{i['pk']['S']}/{i['sk']['S']}" for i in page["Items"]]
        return found

    of_b = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "cus_b"}}}
    ordered = ["approval#1", "period#2026-12", "period#2027-01", "period#2027-02"]
    assert keys(**of_b) == [f"cus_b/{sk}" for sk in ordered]
    assert keys(**of_b, ScanIndexForward=False) == [f"cus_b/{sk}" for sk in reversed(ordered)]
    assert keys(**of_b, Limit=1) == [f"cus_b/{sk}" for sk in ordered]
    assert keys(
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "cus_b"}, ":s": {"S": "period#"}},
    ) == [f"cus_b/{sk}" for sk in ordered[1:]]
    held = {":h": {"S": "held"}}
    state = {"#s": "state"}
    filtered = keys(
        KeyConditionExpression="pk = :p",
        FilterExpression="#s = :h",
        ExpressionAttributeNames=state,
        ExpressionAttributeValues={":p": {"S": "cus_b"}, **held},
    )
    assert filtered == ["cus_b/period#2027-01"]
    assert keys(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "cus_none"}}) == []
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == 12
    by_state = keys(
        IndexName="by-state", KeyConditionExpression="#s = :h", ExpressionAttributeNames=state,
        ExpressionAttributeValues=held,
    )  # fmt: skip
    assert sorted(by_state) == ["cus_a/period#2027-01", "cus_b/period#2027-01"]
    flat_found = ddb.query(
        TableName=flat, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "only"}}
    )["Items"]
    assert flat_found == [{"pk": {"S": "only"}, "n": {"N": "1"}}]
    ddb.delete_table(TableName=table)
    ddb.delete_table(TableName=flat)


def test_map_runs_of_an_execution_are_listed_from_its_start(local_stack: LocalStack, sfn: Any) -> None:
    """Right after StartExecution no Map has run yet: ListMapRuns answers none (moto answered 500 until its
    interpreter had built the execution's environment), and the Map Run once its Map has started."""
    import uuid

    role = "arn:aws:iam::123456789012:role/map-runs"
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"map-runs-{uuid.uuid4().hex[:6]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"items": [1, 2]}))["executionArn"]
    until(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", what="the execution to end")
    assert len(sfn.list_map_runs(executionArn=arn)["mapRuns"]) == 1
    # the moment between StartExecution and its interpreter's start, held open: the execution has no worker yet
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    execution = stepfunctions_parser_backends["123456789012"][local_stack.settings.region].describe_execution(arn)
    worker, execution.exec_worker = execution.exec_worker, None
    try:
        assert sfn.list_map_runs(executionArn=arn)["mapRuns"] == []
    finally:
        execution.exec_worker = worker
