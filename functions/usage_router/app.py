"""Route one SQS batch of usage events to Stripe, Metronome or both; SQS delivers again only what did not land."""

from billmig.settings import usage_router
from billmig.usage.sqs_batch import usage_batch_handler

lambda_handler = usage_batch_handler(usage_router)
