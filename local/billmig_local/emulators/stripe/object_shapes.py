"""Response objects carry exactly the keys of Stripe's own example object for their `object` type.

The examples are `stripe/openapi`'s `fixtures3.json` (vendor data, located as the project rule says). Every object the
emulator returns is built from `shaped(type, ...)`: keys Stripe has but the emulator does not model are present with
an empty value, and a key Stripe does not have is a programming error.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def vendor_data_dir() -> Path:
    override = os.environ.get("BILLMIG_VENDOR_DATA")
    if override:
        return Path(override)
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent.parent / "shared" / "vendor" / "data"
    raise FileNotFoundError("cannot locate the repository root (pyproject.toml) above " + __file__)


@cache
def fixtures() -> dict[str, dict[str, Any]]:
    with _lock:
        resources: dict[str, dict[str, Any]] = json.loads((vendor_data_dir() / "stripe-fixtures3.json").read_text())[
            "resources"
        ]
        return resources


def _empty(key: str, example: Any) -> Any:
    if key == "metadata":
        return {}
    if key == "livemode":
        return False
    if isinstance(example, dict) and example.get("object") == "list":
        return {"object": "list", "data": [], "has_more": False, "url": example.get("url", "")}
    if isinstance(example, list):
        return []
    return None


def shaped(object_type: str, **fields: Any) -> dict[str, Any]:
    example = fixtures()[object_type]
    unknown = set(fields) - set(example)
    if unknown:
        raise KeyError(f"{object_type} has no keys {sorted(unknown)} in Stripe's fixtures")
    body = {key: _empty(key, value) for key, value in example.items()}
    body["object"] = object_type
    body.update(fields)
    return body
