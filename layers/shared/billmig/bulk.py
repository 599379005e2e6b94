"""Bulk calls at a vendor's own sizes: many reads at once, and a bulk write whose rejected records stand alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from billmig.errors import VendorRejected

_K = TypeVar("_K")
_V = TypeVar("_V")

READ_CONCURRENCY = 8  # read-backs are independent lookups; overlapping them hides the vendor's round-trip time


def chunked(items: Sequence[_K], size: int) -> Iterator[list[_K]]:
    """Consecutive slices of at most `size`: a vendor's largest request."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def read_all(read: Callable[[_K], _V], keys: list[_K], *, concurrency: int = READ_CONCURRENCY) -> dict[_K, _V]:
    """One lookup per key, several at a time; the first error (typed by the adapter) propagates."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return dict(zip(keys, pool.map(read, keys), strict=True))


def send_isolating(records: list[_K], send: Callable[[list[_K]], list[_V]]) -> tuple[list[_V], dict[int, str]]:
    """Send a bulk call; when the vendor rejects it as a whole, halve it until the rejected records stand alone.

    One bad record must not cost the rest of its chunk. Only for calls that are safe to repeat (upserts, SET).
    Returns what the accepted calls answered, and each rejected record's index with the vendor's reason.
    """
    answers: list[_V] = []
    rejected: dict[int, str] = {}

    def attempt(offset: int, part: list[_K]) -> None:
        try:
            answers.extend(send(part))
        except VendorRejected as exc:
            if len(part) == 1:
                rejected[offset] = str(exc)
                return
            middle = len(part) // 2
            attempt(offset, part[:middle])
            attempt(offset + middle, part[middle:])

    attempt(0, records)
    return answers, rejected
