"""One seeded book per session (the seed's internal ids are the Metronome aliases: a second seed would collide)."""

from __future__ import annotations

import pytest
from billmig_local.stack import LocalStack
from metronome_book import Book, seed_book

BOOK_CUSTOMERS = 30


@pytest.fixture(scope="session")
def book(local_stack: LocalStack) -> Book:
    return seed_book(local_stack, customers=BOOK_CUSTOMERS, seed=7)
