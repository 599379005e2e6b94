"""Every request is checked against the SDK's own `stripe.params` TypedDicts, with unknown keys forbidden.

The TypedDicts model Python params, so the form body is decoded first (values arrive as strings and pydantic's lax
mode coerces them). Names the SDK imports only for type checkers are injected so the annotations resolve, and
`UntypedStripeObject[str]` (metadata) is read as a plain string map. Preparing the ~5,400 classes takes under a
second, once per process.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from .errors import StripeError

_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
_lock = threading.Lock()
_prepared = False
_adapters: dict[str, TypeAdapter[Any]] = {}
# The SDK's own request options share the TypedDicts but never travel on the wire.
_REQUEST_OPTIONS = frozenset(
    {"api_key", "stripe_version", "stripe_account", "stripe_context", "max_network_retries", "idempotency_key"}
    | {"content_type", "headers"}
)


class _StringMap:
    """Stands in for `UntypedStripeObject[T]` in annotations: a `Dict[str, T]`."""

    def __class_getitem__(cls, item: Any) -> Any:
        return dict[str, item]


def _prepare() -> None:
    global _prepared  # noqa: PLW0603 - one preparation per process
    import stripe._request_options as request_options
    import stripe.params
    from stripe._stripe_context import StripeContext

    request_options.__dict__.setdefault("StripeContext", StripeContext)
    request_options.RequestOptions.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]
    for info in pkgutil.walk_packages(stripe.params.__path__, "stripe.params."):
        module = importlib.import_module(info.name)
        module.__dict__.setdefault("StripeContext", StripeContext)
        module.__dict__.setdefault("Mapping", Mapping)
        if "UntypedStripeObject" in module.__dict__:
            module.__dict__["UntypedStripeObject"] = _StringMap
        for value in list(vars(module).values()):
            if isinstance(value, type) and is_typeddict(value) and value.__module__ == info.name:
                value.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]
    _prepared = True


def adapter(class_path: str) -> TypeAdapter[Any]:
    """`class_path` like `CustomerCreateParams` or `billing.MeterCreateParams` (a name under `stripe.params`)."""
    with _lock:
        if not _prepared:
            _prepare()
        found = _adapters.get(class_path)
        if found is None:
            module_name, _, name = class_path.rpartition(".")
            module = importlib.import_module("stripe.params" + (f".{module_name}" if module_name else ""))
            found = _adapters[class_path] = TypeAdapter(getattr(module, name))
        return found


def bracketed(path: list[Any]) -> str:
    head, *rest = [str(p) for p in path]
    return head + "".join(f"[{p}]" for p in rest)


def _param_path(loc: tuple[Any, ...], data: Any, error_type: str) -> list[Any]:
    """The part of a pydantic location that names request keys (union member tags are dropped)."""
    path: list[Any] = []
    node = data
    for element in loc:
        if isinstance(node, dict):
            present = isinstance(element, str) and element in node
        else:
            present = isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)
        if present:
            path.append(element)
            node = node[element]
        else:
            if error_type == "missing" and isinstance(element, str):
                path.append(element)
            break
    return path


def _raise_for(error: ValidationError, data: Any) -> None:
    errors = error.errors()
    # the most telling error: unknown keys, then missing ones, then the deepest bad value (unions report one per member)
    ranked = sorted(
        errors,
        key=lambda e: (
            {"extra_forbidden": 0, "missing": 1}.get(e["type"], 2),
            -len(_param_path(tuple(e["loc"]), data, e["type"])),
        ),
    )
    first = ranked[0]
    path = _param_path(tuple(first["loc"]), data, first["type"])
    param = bracketed(path) if path else None
    if first["type"] == "extra_forbidden":
        raise StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)
    if first["type"] == "missing":
        raise StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)
    raise StripeError(400, f"Invalid value for {param}: {first['msg']}", code="parameter_invalid", param=param)


def validate(class_path: str, data: dict[str, Any]) -> dict[str, Any]:
    """The decoded request, validated and coerced; a violation is Stripe's 400 naming the `param`."""
    for key in data:
        if key in _REQUEST_OPTIONS:
            raise StripeError(400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key)
    try:
        validated: dict[str, Any] = adapter(class_path).validate_python(data)
    except ValidationError as error:
        _raise_for(error, data)
        raise  # unreachable: _raise_for always raises
    return validated
