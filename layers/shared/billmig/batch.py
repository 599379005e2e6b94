"""A migration batch: the customers an operator moves together, and how each one is named in every system."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from billmig.errors import InvalidCustomerRecord

STRIPE_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{4,}$")
BATCH_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class BatchCustomer(BaseModel):
    """One customer of a batch. `internal_customer_id` becomes the Metronome ingest alias."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    stripe_customer_id: str = Field(pattern=STRIPE_CUSTOMER_ID.pattern)
    internal_customer_id: str = Field(min_length=1, max_length=128)

    @property
    def customer_id(self) -> str:
        """The progress store's key for this customer."""
        return self.stripe_customer_id


def parse_customer(raw: dict[str, Any], *, source: str, index: int) -> BatchCustomer:
    """Validate one record, naming the source, the record and every bad field in the error."""
    try:
        return BatchCustomer.model_validate(raw)
    except ValidationError as exc:
        record_id = raw.get("stripe_customer_id") if isinstance(raw, dict) else None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<record>'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidCustomerRecord(f"{source} record {index} ({record_id or 'no id'}): {problems}") from exc


def customer_key(raw: dict[str, Any], index: int) -> str:
    """The key a record is tracked under, even when the record is too broken to parse."""
    value = raw.get("stripe_customer_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else f"record-{index}"
