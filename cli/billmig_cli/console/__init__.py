"""The state machine console: executions, their graphs and histories, and each batch's customers, read-only.

It reads only what the Step Functions console reads (plus the progress table), through boto3, so the same pages
work against `billmig local up` and against real AWS.
"""
