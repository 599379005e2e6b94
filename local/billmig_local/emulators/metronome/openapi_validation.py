"""Every request is checked against Metronome's published OpenAPI document before a handler sees it.

The document (1.2 MB) takes about a second to load, so it is loaded once per process, lazily, and shared by every
emulator instance. Its location follows the project rule: `<repo>/../shared/vendor/data`, or $BILLMIG_VENDOR_DATA.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ApiError

_SERVER = "https://api.metronome.com"
_lock = threading.Lock()
_openapi: Any = None


def vendor_data_dir() -> Path:
    override = os.environ.get("BILLMIG_VENDOR_DATA")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent.parent / "shared" / "vendor" / "data"
    raise FileNotFoundError("cannot locate the repository root (pyproject.toml) above " + str(here))


def openapi_document_path() -> Path:
    return vendor_data_dir() / "metronome-openapi.json"


def load_openapi() -> Any:
    """The parsed document as an openapi-core `OpenAPI`, built on first use."""
    global _openapi  # noqa: PLW0603 - one shared, lazily built validator per process
    with _lock:
        if _openapi is None:
            from openapi_core import Config, OpenAPI  # imported lazily: it is slow to import too

            _format_checkers_shared()
            # the document is a fixed vendor file: checking the document itself on every start costs about 1.3 s
            _openapi = OpenAPI.from_file_path(str(openapi_document_path()), config=Config(spec_validator_cls=None))
        return _openapi


def _format_checkers_shared() -> None:
    """openapi-core deep-copies jsonschema's format checker for every schema of every request it validates (a tenth
    of this emulator's CPU): one copy serves them all, since nothing adds a format to it after it is made."""
    from openapi_core.validation.schemas.factories import SchemaValidatorsFactory

    factory: Any = SchemaValidatorsFactory
    if getattr(factory, "_billmig_shared_checkers", False):
        return
    original = factory.get_format_checker
    shared: dict[int, Any] = {}

    def get_format_checker(self: Any, format_validators: Any = None, extra_format_validators: Any = None) -> Any:
        if format_validators is not None or extra_format_validators is not None:
            return original(self, format_validators, extra_format_validators)
        checker = shared.get(id(self.format_checker))
        if checker is None:
            checker = shared[id(self.format_checker)] = original(self)
        return checker

    factory.get_format_checker = get_format_checker
    factory._billmig_shared_checkers = True


def raw_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_document_path().read_text())
    return document


@dataclass
class _Request:
    """The minimal request object openapi-core needs; the host is Metronome's so server matching succeeds."""

    method: str
    path: str
    body: bytes | None
    query: list[tuple[str, str]]
    content_type: str = "application/json"
    host_url: str = _SERVER
    parameters: Any = field(init=False)

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.parameters = RequestParameters(
            query=ImmutableMultiDict(self.query),
            header=Headers({"Authorization": "Bearer emulator"}),
            cookie=ImmutableMultiDict(),
        )

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


def _field_path(error: Any) -> str:
    return ".".join(str(p) for p in getattr(error, "absolute_path", getattr(error, "path", [])))


def validate_request(method: str, path: str, query: list[tuple[str, str]], body: bytes | None) -> None:
    """Raise a 400 `ApiError` naming the offending field when the request breaks the published schema."""
    from openapi_core.templating.paths.exceptions import PathNotFound, PathsNotFound

    api = load_openapi()
    request = _Request(method.lower(), path, body if body else None, query)
    try:
        api.validate_request(request)
    except (PathNotFound, PathsNotFound):
        return  # operations the document lacks (legacy SDK endpoints) are not ours to judge
    except Exception as exc:
        raise ApiError(400, describe_validation_error(exc)) from exc


def describe_validation_error(exc: BaseException) -> str:
    cause = exc.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or [])
    if schema_errors:
        parts = []
        for error in schema_errors[:5]:
            where = _field_path(error)
            parts.append(f"{where}: {error.message}" if where else error.message)
        return "Invalid request: " + "; ".join(parts)
    name = getattr(exc, "name", None) or getattr(cause, "name", None)
    detail = str(cause or exc)
    return f"Invalid request: {name}: {detail}" if name else f"Invalid request: {detail}"
