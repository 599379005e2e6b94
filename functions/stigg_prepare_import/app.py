"""Read an import's files, check every record and the import order, and write the chunks the later steps send."""

from billmig.observability import step_handler
from billmig.settings import import_storage, stigg_target
from billmig.steps import Step
from billmig.stigg.import_preparation import ImportRequest, PreparedImport, prepare_import


@step_handler(ImportRequest, Step.STIGG_PREPARE)
def lambda_handler(request: ImportRequest) -> PreparedImport:
    return prepare_import(request, import_storage(), stigg_target())
