"""Configuration from the environment, as pydantic models, so a missing variable fails loudly at cold start."""

from __future__ import annotations

import os
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from billmig.adapters.dynamodb_progress import DynamoDBProgressStore

if TYPE_CHECKING:  # imported where used, so a Lambda loads only the SDKs it calls
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from billmig.adapters.dynamodb_chunk_progress import DynamoDBChunkProgressStore
    from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
    from billmig.adapters.metronome_ingest import MetronomeIngestSink
    from billmig.adapters.metronome_sdk import MetronomeSDKTarget
    from billmig.adapters.s3_import_storage import S3ImportStorage
    from billmig.adapters.s3_usage_journal import S3UsageJournal
    from billmig.adapters.sqs_usage_queue import SQSDeadLetters
    from billmig.adapters.ssm_feature_flags import SSMFeatureFlags
    from billmig.adapters.stigg_graphql import StiggGraphQLTarget
    from billmig.adapters.stripe_meter_events import StripeMeterEventSink
    from billmig.adapters.stripe_sdk import StripeSDKSource
    from billmig.metronome.rollback import RollbackPorts
    from billmig.usage.mapping import UsageRouterConfig
    from billmig.usage.resend import ResendResult
    from billmig.usage.router import UsageRouter
    from billmig.usage.routing import Destination

SECRET_MAX_AGE_SECONDS = 300  # a rotated key reaches warm containers within five minutes

_M = TypeVar("_M", bound=BaseModel)


class ProgressTableSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    progress_table_name: str = Field(alias="PROGRESS_TABLE_NAME", min_length=3)


def from_environment(model: type[_M]) -> _M:
    return model.model_validate(dict(os.environ))


@cache
def progress_store() -> DynamoDBProgressStore:
    """One store per warm container (the boto3 client is reused across invocations)."""
    return DynamoDBProgressStore(from_environment(ProgressTableSettings).progress_table_name)


@cache
def parity_ledger() -> DynamoDBParityLedger:
    """The parity ledger lives on the progress table, under its own run ids."""
    from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger

    return DynamoDBParityLedger(from_environment(ProgressTableSettings).progress_table_name)


@cache
def chunk_progress() -> DynamoDBChunkProgressStore:
    """Where a bulk chunk's Task records what it has done (the progress table)."""
    from billmig.adapters.dynamodb_chunk_progress import DynamoDBChunkProgressStore

    return DynamoDBChunkProgressStore(from_environment(ProgressTableSettings).progress_table_name)


class ImportBucketSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    import_bucket_name: str = Field(alias="IMPORT_BUCKET_NAME", min_length=3)


class StiggSettings(BaseModel):
    """The API key is not here: only the name of the Secrets Manager secret that holds it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    stigg_api_url: str = Field(alias="STIGG_API_URL", min_length=8)
    stigg_api_key_secret: str = Field(alias="STIGG_API_KEY_SECRET", min_length=1)


class StripeSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    stripe_api_key_secret: str = Field(alias="STRIPE_API_KEY_SECRET", min_length=1)
    stripe_api_base: str = Field(default="", alias="STRIPE_API_BASE")


@cache
def _secrets() -> SecretsProvider:
    """Powertools' provider on a client of boto3's default session: its own default builds a new session, which
    parses the service's model and the endpoint data again in every container (the warm session has them)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def _secret(name: str) -> str:
    value = _secrets().get(name, max_age=SECRET_MAX_AGE_SECONDS)
    if isinstance(value, bytes):
        return value.decode()
    if not isinstance(value, str):
        raise TypeError(f"secret {name!r} is not a string")  # a SecretBinary that is not text, or nothing at all
    return value


@cache
def import_storage() -> S3ImportStorage:
    from billmig.adapters.s3_import_storage import S3ImportStorage

    return S3ImportStorage(from_environment(ImportBucketSettings).import_bucket_name)


def stigg_target() -> StiggGraphQLTarget:
    """Every call paced within Stigg's limits by the pacer all Tasks share (on the progress table)."""
    from billmig.adapters.dynamodb_pacer import DynamoDBPacer
    from billmig.adapters.stigg_graphql import StiggGraphQLTarget

    settings = from_environment(StiggSettings)
    pacer = DynamoDBPacer(from_environment(ProgressTableSettings).progress_table_name)
    return StiggGraphQLTarget.connect(_secret(settings.stigg_api_key_secret), settings.stigg_api_url, pacer)


def stripe_source() -> StripeSDKSource:
    return _stripe_source(*_stripe_credentials())


@cache
def _stripe_source(api_key: str, api_base: str | None) -> StripeSDKSource:
    """One client (and connection pool) per warm container and key, as `_metronome_target`: built per invocation,
    a client was a third of a warm step's CPU."""
    from billmig.adapters.stripe_sdk import StripeSDKSource

    return StripeSDKSource.connect(api_key, api_base)


class MetronomeSettings(BaseModel):
    """The bearer token is not here: only the name of the Secrets Manager secret that holds it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    metronome_api_key_secret: str = Field(alias="METRONOME_API_KEY_SECRET", min_length=1)
    metronome_api_base: str = Field(default="", alias="METRONOME_API_BASE")


def metronome_target() -> MetronomeSDKTarget:
    settings = from_environment(MetronomeSettings)
    return _metronome_target(_secret(settings.metronome_api_key_secret), settings.metronome_api_base or None)


@cache
def _metronome_target(token: str, base_url: str | None) -> MetronomeSDKTarget:
    """One client (and connection pool) per warm container and token: a rotated token makes a new one."""
    from billmig.adapters.metronome_sdk import MetronomeSDKTarget

    return MetronomeSDKTarget.connect(token, base_url)


class UsageRouterSettings(BaseModel):
    """Where the router's config lives (an SSM parameter, JSON) and where refused events go."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    usage_router_config_parameter: str = Field(alias="USAGE_ROUTER_CONFIG_PARAMETER", min_length=1)
    usage_dead_letter_queue_url: str = Field(alias="USAGE_DEAD_LETTER_QUEUE_URL", min_length=8)


CONFIG_MAX_AGE_SECONDS = 60  # a config change reaches warm containers within a minute
_routers: dict[str, UsageRouter] = {}


def _usage_router_config() -> tuple[str, UsageRouterConfig]:
    """The router config's text (what warm routers are keyed by) and the config, from its SSM parameter."""
    from aws_lambda_powertools.utilities import parameters

    from billmig.usage.mapping import router_config_from_json

    name = from_environment(UsageRouterSettings).usage_router_config_parameter
    text = str(parameters.get_parameter(name, max_age=CONFIG_MAX_AGE_SECONDS))
    return text, router_config_from_json(text, f"SSM parameter {name}")


@cache
def usage_journal() -> S3UsageJournal:
    """The journal of routed usage events, under `usage-journal/` in the import bucket."""
    from billmig.adapters.s3_usage_journal import S3UsageJournal

    return S3UsageJournal(from_environment(ImportBucketSettings).import_bucket_name)


def _stripe_meter_sink(transport: Literal["stream", "v1"]) -> StripeMeterEventSink:
    return _stripe_meter_sink_for(*_stripe_credentials(), transport)


@cache
def _stripe_meter_sink_for(
    api_key: str, api_base: str | None, transport: Literal["stream", "v1"]
) -> StripeMeterEventSink:
    """Per warm container and key: its meter event session and meter ids are reused until they age out."""
    from billmig.adapters.stripe_meter_events import StripeMeterEventSink

    return StripeMeterEventSink.connect(api_key, api_base, transport)


def _metronome_ingest_sink() -> MetronomeIngestSink:
    settings = from_environment(MetronomeSettings)
    return _metronome_ingest_sink_for(_secret(settings.metronome_api_key_secret), settings.metronome_api_base or None)


@cache
def _metronome_ingest_sink_for(token: str, base_url: str | None) -> MetronomeIngestSink:
    """Per warm container and token: a Metronome client builds an SSL context and a connection pool."""
    from billmig.adapters.metronome_ingest import MetronomeIngestSink

    return MetronomeIngestSink.connect(token, base_url)


@cache
def _dead_letters(queue_url: str) -> SQSDeadLetters:
    """One SQS client per warm container: built per invocation, it was most of a backfill step's CPU."""
    from billmig.adapters.sqs_usage_queue import SQSDeadLetters

    return SQSDeadLetters(queue_url)


def usage_router() -> UsageRouter:
    """The router for the current config; warm containers keep it (and its caches) until the config changes."""
    from billmig.adapters.dynamodb_usage_routes import DynamoDBRouteSource
    from billmig.adapters.stripe_customer_directory import StripeSearchDirectory
    from billmig.usage.router import UsageRouter
    from billmig.usage.routing import RouteBook

    text, config = _usage_router_config()
    if text in _routers:
        return _routers[text]
    stripe_sink = _stripe_meter_sink(config.stripe_transport)
    directory = StripeSearchDirectory(stripe_sink.client, config.internal_id_metadata_key)
    routes = RouteBook(
        DynamoDBRouteSource(from_environment(ProgressTableSettings).progress_table_name),
        directory,
        ttl=config.route_cache_seconds,
        decommissioned=stripe_writes_off_batches,
    )
    dead_letters = _dead_letters(from_environment(UsageRouterSettings).usage_dead_letter_queue_url)
    for replaced in _routers.values():
        replaced.close()
    _routers.clear()
    _routers[text] = UsageRouter(config, routes, stripe_sink, _metronome_ingest_sink(), dead_letters, usage_journal())
    return _routers[text]


# -- parity ----------------------------------------------------------------------------------------------------------
if TYPE_CHECKING:
    from billmig.adapters.dynamodb_parity_customers import DynamoDBParityCustomers
    from billmig.adapters.dynamodb_parity_ledger import DynamoDBParityLedger
    from billmig.adapters.usage_totals import VendorUsageTotals
    from billmig.usage.mapping import UsageRouterConfig


class RouterConfigSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    usage_router_config_parameter: str = Field(alias="USAGE_ROUTER_CONFIG_PARAMETER", min_length=1)


@cache
def parity_customer_listing() -> DynamoDBParityCustomers:
    from billmig.adapters.dynamodb_parity_customers import DynamoDBParityCustomers

    return DynamoDBParityCustomers(from_environment(ProgressTableSettings).progress_table_name)


def usage_router_config() -> UsageRouterConfig:
    """The router's rules and late-event window (the completeness check reads usage the way the router sent it)."""
    from aws_lambda_powertools.utilities import parameters

    from billmig.usage.mapping import router_config_from_json

    name = from_environment(RouterConfigSettings).usage_router_config_parameter
    text = str(parameters.get_parameter(name, max_age=CONFIG_MAX_AGE_SECONDS))
    return router_config_from_json(text, f"SSM parameter {name}")


def usage_totals() -> VendorUsageTotals:
    stripe_settings = from_environment(StripeSettings)
    metronome_settings = from_environment(MetronomeSettings)
    return _usage_totals(
        _secret(stripe_settings.stripe_api_key_secret),
        stripe_settings.stripe_api_base or None,
        _secret(metronome_settings.metronome_api_key_secret),
        metronome_settings.metronome_api_base or None,
    )


@cache
def _usage_totals(
    stripe_key: str, stripe_base: str | None, metronome_token: str, metronome_base: str | None
) -> VendorUsageTotals:
    """One pair of clients per warm container and key (meters, customers and metrics are cached on it)."""
    from billmig.adapters.usage_totals import VendorUsageTotals

    return VendorUsageTotals.connect(stripe_key, stripe_base, metronome_token, metronome_base, retry_throttled=True)


def parity_stripe_reads() -> StripeSDKSource:
    """Parity only reads Stripe: its client retries a throttled read in place before Step Functions would."""
    return _parity_stripe_reads(*_stripe_credentials())


@cache
def _parity_stripe_reads(api_key: str, api_base: str | None) -> StripeSDKSource:
    from billmig.adapters.stripe_sdk import StripeSDKSource

    return StripeSDKSource.connect(api_key, api_base, reads=True)


def _stripe_credentials() -> tuple[str, str | None]:
    settings = from_environment(StripeSettings)
    return _secret(settings.stripe_api_key_secret), settings.stripe_api_base or None


class ParitySettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    parity_concurrency: int = Field(default=8, alias="PARITY_CONCURRENCY", ge=1, le=1000)


def parity_concurrency() -> int:
    """Customers checked at once: the template's `ParityConcurrency`, sized to the vendors' read limits."""
    return from_environment(ParitySettings).parity_concurrency


def resend_usage(
    internal_id: str, destination: Destination, since: datetime | None = None, until: datetime | None = None
) -> ResendResult:
    """Re-send from the usage journal the events of `internal_id` timed in [since, until) that `destination` did
    not get (`billmig.usage.resend.resend`), wired from the environment: the router config's SSM parameter
    (USAGE_ROUTER_CONFIG_PARAMETER), the journal (IMPORT_BUCKET_NAME, `usage-journal/`), the dead-letter queue
    (USAGE_DEAD_LETTER_QUEUE_URL) and only the destination's secret. Idempotent; raises `VendorUnavailable` on a
    transient failure (Step Functions retries it). The rollback step calls it with `Destination.STRIPE`."""
    from billmig.usage.resend import ResendPorts, resend
    from billmig.usage.routing import Destination

    def config() -> UsageRouterConfig:
        return _usage_router_config()[1]

    dead_letters = _dead_letters(from_environment(UsageRouterSettings).usage_dead_letter_queue_url)
    if destination is Destination.STRIPE:
        stripe = _stripe_meter_sink(config().stripe_transport)  # a rollback's customer had its usage routed
        ports = ResendPorts(config, usage_journal(), dead_letters, stripe=stripe)
    else:
        ports = ResendPorts(config, usage_journal(), dead_letters, metronome=_metronome_ingest_sink())
    return resend(ports, internal_id, destination, since, until)


class FeatureFlagSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    feature_flags_parameter: str = Field(alias="FEATURE_FLAGS_PARAMETER", min_length=1)


FLAGS_MAX_AGE_SECONDS = 15  # a flipped flag reaches warm routers within 15 seconds


def stripe_writes_off_batches() -> frozenset[str]:
    """The batches whose Stripe usage writes are off, through Powertools Parameters' cache."""
    from aws_lambda_powertools.utilities import parameters

    from billmig.feature_flags import parse_flags, stripe_writes_off

    name = from_environment(FeatureFlagSettings).feature_flags_parameter
    text = str(parameters.get_parameter(name, max_age=FLAGS_MAX_AGE_SECONDS))
    return frozenset(stripe_writes_off(parse_flags(text, f"SSM parameter {name}")))


def feature_flags() -> SSMFeatureFlags:
    from billmig.adapters.ssm_feature_flags import SSMFeatureFlags

    return SSMFeatureFlags(from_environment(FeatureFlagSettings).feature_flags_parameter)


def rollback_ports() -> RollbackPorts:
    from billmig.metronome.rollback import RollbackPorts
    from billmig.world_clock import WorldClock

    return RollbackPorts(
        storage=import_storage(),
        stripe=stripe_source(),
        metronome=metronome_target(),
        store=progress_store(),
        resend=resend_usage,
        clock=WorldClock(),
    )
