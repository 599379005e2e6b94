"""A migration batch: the customers an operator moves together, and how each one is named in every system."""

from __future__ import annotations

import re
from typing import Any

STRIPE_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{4,}$")
BATCH_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def customer_key(raw: dict[str, Any], index: int) -> str:
    """The key a record is tracked under, even when the record is too broken to parse."""
    value = raw.get("stripe_customer_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else f"record-{index}"
