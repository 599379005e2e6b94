"""The first step of an import: read every file, check everything, and write the chunks the later steps send."""

from __future__ import annotations

from pydantic import BaseModel, Field

from billmig.stigg.entity_progress import entity_key
from billmig.stigg.errors import InvalidImportFile
from billmig.stigg.import_events import ImportEvent
from billmig.stigg.import_plan import ImportRules, Located, plan_import
from billmig.stigg.import_storage import ImportStorage, chunk_key, manifest_key
from billmig.stigg.record_files import FileProblem, RecordKind, load_records, problems_error
from billmig.stigg.records import CustomerRecord, SubscriptionRecord, UsageRecord
from billmig.stigg.target import StiggTarget

IMPORT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ImportRequest(ImportEvent):
    import_id: str = Field(pattern=IMPORT_ID)
    customers_keys: list[str] = Field(default_factory=list)
    subscriptions_keys: list[str] = Field(default_factory=list)
    usage_keys: list[str] = Field(default_factory=list)
    paid_plan_ids: list[str] = Field(default_factory=list)


class PaidItem(ImportEvent):
    chunk_key: str
    subscription_id: str
    progress_key: str

    @property
    def subject(self) -> str | None:
        return self.progress_key


class ChunkItem(BaseModel):
    """One Map item: a chunk to send, and the key its failure is recorded under."""

    import_id: str
    chunk_key: str
    progress_key: str


class PreparedImport(BaseModel):
    import_id: str
    customer_chunks: list[ChunkItem]
    subscription_chunks: list[ChunkItem]
    paid: list[PaidItem]
    usage_chunks: list[ChunkItem]
    counts: dict[str, int]


def file_name_of(key: str) -> str:
    """`imports/<id>/input/customers/000-customers.json` -> `customers.json`, the name the operator gave."""
    base = key.rsplit("/", 1)[-1]
    prefix, _, rest = base.partition("-")
    return rest if prefix.isdigit() and rest else base


def read_located(
    storage: ImportStorage, kind: RecordKind, keys: list[str], problems: list[FileProblem]
) -> list[Located[CustomerRecord]] | list[Located[SubscriptionRecord]] | list[Located[UsageRecord]]:
    located: list[Located[CustomerRecord]] | list[Located[SubscriptionRecord]] | list[Located[UsageRecord]] = []
    for key in keys:
        name = file_name_of(key)
        try:
            records = load_records(kind, storage.read_text(key), file_name=name)
        except InvalidImportFile as exc:
            problems.extend(p for p in exc.problems if isinstance(p, FileProblem))
            continue
        located.extend(Located(name, index, record) for index, record in enumerate(records))  # type: ignore[arg-type]
    return located


def prepare_import(request: ImportRequest, storage: ImportStorage, target: StiggTarget) -> PreparedImport:
    problems: list[FileProblem] = []
    customers = read_located(storage, RecordKind.CUSTOMERS, request.customers_keys, problems)
    subscriptions = read_located(storage, RecordKind.SUBSCRIPTIONS, request.subscriptions_keys, problems)
    usage = read_located(storage, RecordKind.USAGE, request.usage_keys, problems)
    if problems:
        raise problems_error(problems)
    in_file = {located.record.customer_id for located in customers}
    elsewhere = sorted({located.record.customer_id for located in [*subscriptions, *usage]} - in_file)
    in_stigg = target.customers_by_id(elsewhere)  # referenced but not in the file: does Stigg have them? (in pages)
    plan = plan_import(
        customers,  # type: ignore[arg-type]
        subscriptions,  # type: ignore[arg-type]
        usage,  # type: ignore[arg-type]
        ImportRules(paid_plan_ids=frozenset(request.paid_plan_ids)),
        in_stigg.get,
    )

    def write(kind: str, index: int, records: list[dict[str, object]]) -> str:
        key = chunk_key(request.import_id, kind, index)
        storage.write_json(key, records)
        return key

    def item(key: str) -> ChunkItem:
        return ChunkItem(import_id=request.import_id, chunk_key=key, progress_key=entity_key("chunk", key))

    def dump(record: CustomerRecord | SubscriptionRecord | UsageRecord) -> dict[str, object]:
        return record.model_dump(mode="json", by_alias=True, exclude_none=True)

    customer_chunks = [item(write("customers", i, [dump(r) for r in chunk])) for i, chunk in enumerate(plan.customers)]
    subscription_chunks = [
        item(write("subscriptions", i, [dump(r.model_copy(update={"subscription_id": sid})) for sid, r in chunk]))
        for i, chunk in enumerate(plan.subscriptions)
    ]
    paid = [
        PaidItem(
            import_id=request.import_id,
            chunk_key=write("paid", i, [dump(r.model_copy(update={"subscription_id": sid}))]),
            subscription_id=sid,
            progress_key=entity_key("paid", r.key),
        )
        for i, (sid, r) in enumerate(plan.paid)
    ]
    usage_chunks = [item(write("usage", i, [dump(r) for r in chunk])) for i, chunk in enumerate(plan.usage)]
    manifest = {
        "customer": [c.chunk_key for c in customer_chunks],
        "subscription": [c.chunk_key for c in subscription_chunks],
        "usage": [c.chunk_key for c in usage_chunks],
    }
    storage.write_json(manifest_key(request.import_id), manifest)  # the report names every record, even unsent
    return PreparedImport(
        import_id=request.import_id,
        customer_chunks=customer_chunks,
        subscription_chunks=subscription_chunks,
        paid=paid,
        usage_chunks=usage_chunks,
        counts=plan.counts(),
    )
