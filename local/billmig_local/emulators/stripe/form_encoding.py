"""Stripe v1 bodies and queries: `a[b][0][c]=v` pairs decoded into the nested dicts and lists the SDK encoded.

Values stay strings (the params validation coerces them). A bracket group whose keys are all indices becomes a list,
except inside string maps (`metadata`, meter event `payload`), whose keys are the caller's own.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import StripeError

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
STRING_MAPS = frozenset({"metadata", "payload"})


def _split(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    tail = "[" + rest
    segments = _SEGMENT.findall(tail)
    if "".join(f"[{s}]" for s in segments) != tail:
        raise StripeError(400, f"Invalid parameter name: {key}", code="parameter_invalid_string", param=key)
    return [head, *segments]


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _split(key)
        node: dict[str, Any] = root
        for depth, segment in enumerate(path):
            last = depth == len(path) - 1
            name = segment if segment != "" else str(len(node))  # `expand[]=a&expand[]=b`
            if last:
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise StripeError(400, f"Invalid nesting for parameter {key}", param=key)
                node = child
    decoded: dict[str, Any] = _listify(root, None)
    return decoded


def _listify(value: Any, name: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    if name in STRING_MAPS:
        return value
    converted = {k: _listify(v, k) for k, v in value.items()}
    if converted and name is not None and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_form(body: bytes) -> dict[str, Any]:
    return decode_pairs(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def decode_query(query: str) -> dict[str, Any]:
    return decode_pairs(parse_qsl(query, keep_blank_values=True))
