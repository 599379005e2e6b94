"""Money as people read it, printed from integer minor units (cents) exactly: no float ever touches an amount."""

from __future__ import annotations

from decimal import Decimal


def format_cents(cents: int, *, signed: bool = False) -> str:
    """`123456` -> `$1,234.56`; `-5` -> `-$0.05`; with `signed`, a positive amount gets a `+`."""
    sign = "-" if cents < 0 else ("+" if signed and cents > 0 else "")
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def format_quantity(quantity: float | int) -> str:
    """A usage quantity as its shortest exact decimal (`1234.5` -> `1,234.5`, `3.0` -> `3`), never in exponent form."""
    value = Decimal(repr(quantity)) if isinstance(quantity, float) else Decimal(quantity)
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,f}"
