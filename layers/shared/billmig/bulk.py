"""Bulk calls at a vendor's own sizes: chunks of its largest request, and a bulk write whose rejected records stand
alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from billmig.errors import VendorRejected

_K = TypeVar("_K")
_V = TypeVar("_V")


def chunked(items: Sequence[_K], size: int) -> Iterator[list[_K]]:
    """Consecutive slices of at most `size`: a vendor's largest request."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def send_isolating(
    records: list[_K],
    send: Callable[[list[_K]], list[_V]],
    *,
    on_accepted: Callable[[int, list[_K], list[_V]], None] | None = None,
    on_rejected: Callable[[int, str], None] | None = None,
) -> tuple[list[_V], dict[int, str]]:
    """Send a bulk call; when the vendor rejects it as a whole, halve it until the rejected records stand alone.

    One bad record must not cost the rest of its chunk. Only for calls that are safe to repeat (upserts, SET).
    Returns what the accepted calls answered, and each rejected record's index with the vendor's reason; the
    callbacks hear of each part as it is settled, so a caller can record progress before a later part fails.
    """
    answers: list[_V] = []
    rejected: dict[int, str] = {}

    def attempt(offset: int, part: list[_K]) -> None:
        try:
            answered = send(part)
        except VendorRejected as exc:
            if len(part) == 1:
                rejected[offset] = str(exc)
                if on_rejected is not None:
                    on_rejected(offset, str(exc))
                return
            middle = len(part) // 2
            attempt(offset, part[:middle])
            attempt(offset + middle, part[middle:])
            return
        answers.extend(answered)
        if on_accepted is not None:
            on_accepted(offset, part, answered)

    attempt(0, records)
    return answers, rejected
