"""Logger, Tracer and Metrics made once, and the one decorator every step handler wears.

The decorator parses the event into the step's pydantic model (a bad event fails before any work), binds run,
subject and step to every log line, counts the outcome as a metric with the step as its dimension, and returns
plain JSON; so a handler is the decorator and one domain call. Event models name their run and subject with
`run_id` and `subject` properties. An exception propagates unchanged: its class name is
the error Step Functions' Retry and Catch match.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

SERVICE = "billmig"
METRICS_NAMESPACE = "BillingMigration"


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is when a line is logged, not when the logger was made (the local stack's
    Lambda bridge captures each invocation's stdout for CloudWatch Logs)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


# Named here, not only in the template's environment: the objects are made once per process, whatever imports first.
logger = Logger(service=SERVICE, logger_handler=_CurrentStdout())
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


E = TypeVar("E", bound=BaseModel)
LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _counts(result: BaseModel) -> dict[str, int]:
    """Per-record outcomes a result reports (`outcomes`, `counts` or `records`), as metric values."""
    for field, prefix in (("outcomes", "Records_"), ("counts", "Records_")):
        values = getattr(result, field, None)
        if isinstance(values, dict):
            return {f"{prefix}{name.replace(' ', '_')}": int(n) for name, n in values.items()}
    records = getattr(result, "records", None)
    return {"Records": records} if isinstance(records, int) else {}


def step_handler(model: type[E], step: str) -> Callable[[Callable[[E], BaseModel]], LambdaHandler]:
    """`step` names the handler's work in logs and metrics (a `billmig.steps.Step`, or `report`, `record_failure`)."""

    def decorate(domain_call: Callable[[E], BaseModel]) -> LambdaHandler:
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler
        @metrics.log_metrics
        @functools.wraps(domain_call)
        def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            request = parse(event=event, model=model)
            logger.append_keys(run_id=getattr(request, "run_id", None), subject=getattr(request, "subject", None))
            logger.append_keys(step=step)
            metrics.add_dimension(name="step", value=step)
            try:
                result = domain_call(request)
            except Exception as exc:
                metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
                logger.warning("step raised", extra={"error_type": type(exc).__name__, "error": str(exc)})
                raise
            metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
            for name, value in _counts(result).items():
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            payload = result.model_dump(mode="json")
            logger.info("step finished", extra={"result": {k: v for k, v in payload.items() if k != "results"}})
            return payload

        setattr(handler, "event_model", model)  # noqa: B010 - what `sam local invoke -e` events are checked against
        return handler

    return decorate
