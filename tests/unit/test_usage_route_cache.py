"""The router's route cache (`RouteBook`): the progress store is read once per customer within the config's TTL and
again after it; a customer nobody knows is asked about again after a short negative TTL, so one created meanwhile
is found soon. The clock is a stand-in the test moves (no sleeps); the route source and the Stripe directory count
the questions they are asked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from billmig.usage.routing import (
    CLEANED_UP,
    NOT_FOUND_CACHE_SECONDS,
    PARALLEL_RUN,
    CustomerRoute,
    Destination,
    RouteBook,
)

T0 = 1_000.0
CUTOVER = datetime(2027, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class CountingSource:
    """The progress store's view, counting `route_of` per internal id; `routes` can change between reads."""

    def __init__(self, routes: dict[str, CustomerRoute] | None = None) -> None:
        self.routes = dict(routes or {})
        self.reads: Counter[str] = Counter()

    def route_of(self, internal_id: str) -> CustomerRoute | None:
        self.reads[internal_id] += 1
        return self.routes.get(internal_id)


class CountingDirectory:
    def __init__(self, customers: dict[str, str] | None = None) -> None:
        self.customers = dict(customers or {})
        self.reads: Counter[str] = Counter()

    def stripe_customer_for(self, internal_id: str) -> str | None:
        self.reads[internal_id] += 1
        return self.customers.get(internal_id)


def in_parallel_run(internal_id: str, stripe_id: str = "cus_1", phase: str = PARALLEL_RUN) -> CustomerRoute:
    return CustomerRoute(internal_id, stripe_id, phase=phase, cutover_at=CUTOVER, run_id="batch-1")


def book(source: CountingSource, directory: CountingDirectory | None = None, *, ttl: float, clock: Clock) -> RouteBook:
    return RouteBook(source, directory or CountingDirectory(), ttl=ttl, clock=clock)


def known(routes: RouteBook, internal_id: str) -> CustomerRoute:
    found = routes.route(internal_id)
    assert found is not None, internal_id
    return found


def test_a_route_is_read_from_the_store_once_within_its_ttl_and_again_after_it() -> None:
    clock = Clock()
    source = CountingSource({"u1": in_parallel_run("u1")})
    routes = book(source, ttl=60, clock=clock)

    assert routes.route("u1") == in_parallel_run("u1")
    clock.now = T0 + 30
    routes.route("u1")
    clock.now = T0 + 59.999
    routes.route("u1")
    assert source.reads["u1"] == 1

    # The phase changed in the store meanwhile: the cache still answers the old route until the TTL is over.
    source.routes["u1"] = in_parallel_run("u1", phase=CLEANED_UP)
    assert known(routes, "u1").phase == PARALLEL_RUN
    clock.now = T0 + 60  # the TTL is over at exactly `ttl` seconds
    assert known(routes, "u1").phase == CLEANED_UP
    assert source.reads["u1"] == 2

    # ...and the new read starts a new TTL from the moment it was made.
    clock.now = T0 + 119.999
    routes.route("u1")
    assert source.reads["u1"] == 2
    clock.now = T0 + 120
    routes.route("u1")
    assert source.reads["u1"] == 3


def test_each_customer_has_its_own_ttl() -> None:
    clock = Clock()
    source = CountingSource({"u1": in_parallel_run("u1", "cus_1"), "u2": in_parallel_run("u2", "cus_2")})
    routes = book(source, ttl=60, clock=clock)
    routes.route("u1")
    clock.now = T0 + 40
    routes.route("u2")
    clock.now = T0 + 60
    assert known(routes, "u1").stripe_customer_id == "cus_1"
    assert known(routes, "u2").stripe_customer_id == "cus_2"
    assert source.reads == Counter({"u1": 2, "u2": 1})


def test_a_ttl_of_zero_reads_the_store_every_time() -> None:
    clock = Clock()
    source = CountingSource({"u1": in_parallel_run("u1")})
    routes = book(source, ttl=0, clock=clock)
    for _ in range(3):
        routes.route("u1")
    assert source.reads["u1"] == 3


def test_an_unknown_customer_is_asked_about_again_after_the_short_negative_ttl_and_found_once_created() -> None:
    clock = Clock()
    source = CountingSource()
    directory = CountingDirectory()
    routes = book(source, directory, ttl=60, clock=clock)

    assert routes.route("ghost") is None
    assert (source.reads["ghost"], directory.reads["ghost"]) == (1, 1)  # the store, then Stripe
    clock.now = T0 + NOT_FOUND_CACHE_SECONDS - 0.001
    assert routes.route("ghost") is None
    assert (source.reads["ghost"], directory.reads["ghost"]) == (1, 1)  # the miss is cached

    source.routes["ghost"] = in_parallel_run("ghost", "cus_new")  # put into the parallel run meanwhile
    clock.now = T0 + NOT_FOUND_CACHE_SECONDS  # well inside the 60 s TTL a found route would have
    found = routes.route("ghost")
    assert found is not None and found.stripe_customer_id == "cus_new"
    assert (source.reads["ghost"], directory.reads["ghost"]) == (2, 1)  # found in the store: Stripe not asked
    # Now known, it is cached for the full TTL, not the negative one.
    clock.now = T0 + NOT_FOUND_CACHE_SECONDS + 59.999
    routes.route("ghost")
    assert source.reads["ghost"] == 2


def test_the_negative_ttl_is_never_longer_than_the_configured_ttl() -> None:
    clock = Clock()
    source = CountingSource()
    directory = CountingDirectory()
    short = NOT_FOUND_CACHE_SECONDS / 4
    routes = book(source, directory, ttl=short, clock=clock)
    routes.route("ghost")
    clock.now = T0 + short - 0.001
    routes.route("ghost")
    assert (source.reads["ghost"], directory.reads["ghost"]) == (1, 1)
    clock.now = T0 + short
    routes.route("ghost")
    assert (source.reads["ghost"], directory.reads["ghost"]) == (2, 2)


def test_a_customer_only_stripe_knows_goes_to_stripe_only_and_is_cached_for_the_full_ttl() -> None:
    clock = Clock()
    source = CountingSource()
    directory = CountingDirectory({"legacy": "cus_legacy"})
    routes = book(source, directory, ttl=60, clock=clock)

    found = routes.route("legacy")
    assert found == CustomerRoute("legacy", "cus_legacy")
    assert found.destinations(CUTOVER) == frozenset({Destination.STRIPE})
    clock.now = T0 + NOT_FOUND_CACHE_SECONDS + 1  # past the negative TTL: a found customer is not a miss
    routes.route("legacy")
    assert (source.reads["legacy"], directory.reads["legacy"]) == (1, 1)
    clock.now = T0 + 60
    routes.route("legacy")
    assert (source.reads["legacy"], directory.reads["legacy"]) == (2, 2)


@pytest.mark.parametrize(("off", "expected"), [(frozenset({"batch-1"}), True), (frozenset({"other"}), False)])
def test_a_cleaned_up_customer_is_metronome_only_when_its_batch_has_stripe_writes_off(
    off: frozenset[str], expected: bool
) -> None:
    clock = Clock()
    source = CountingSource({"u1": in_parallel_run("u1", phase=CLEANED_UP)})
    routes = RouteBook(source, CountingDirectory(), ttl=60, clock=clock, decommissioned=lambda: off)
    found = routes.route("u1")
    assert found is not None and found.stripe_decommissioned is expected
    before = datetime(2027, 2, 1, tzinfo=UTC)  # before the cutover: dual-write unless decommissioned
    want = {Destination.METRONOME} if expected else {Destination.STRIPE, Destination.METRONOME}
    assert found.destinations(before) == frozenset(want)


def test_a_cached_miss_is_looked_up_again_on_request_and_a_cached_route_is_not() -> None:
    """What the router asks for on a batch's first event of a customer: a replay after the fix, seconds after the
    miss was cached, finds the customer created meanwhile instead of dead-lettering its events again."""
    clock = Clock()
    source, directory = CountingSource(), CountingDirectory()
    routes = book(source, directory, ttl=60, clock=clock)
    assert routes.route("ghost") is None
    source.routes["ghost"] = in_parallel_run("ghost", "cus_ghost")  # the fix, well inside the negative TTL
    clock.now = T0 + 1
    assert routes.route("ghost") is None  # without the recheck, the cached miss answers
    assert known_rechecked(routes, "ghost").stripe_customer_id == "cus_ghost"
    assert source.reads["ghost"] == 2
    # found, it is cached as any route: a recheck asks nobody
    assert known_rechecked(routes, "ghost").stripe_customer_id == "cus_ghost"
    assert routes.route("ghost") is not None
    assert source.reads["ghost"] == 2 and directory.reads["ghost"] == 1  # Stripe asked only for the first miss


def known_rechecked(routes: RouteBook, internal_id: str) -> CustomerRoute:
    found = routes.route(internal_id, recheck_miss=True)
    assert found is not None, internal_id
    return found
