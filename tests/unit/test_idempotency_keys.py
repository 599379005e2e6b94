"""decisions.md (d): `{migration_id}:{step}[:{object}]`, the revision from the second one on, within each limit."""

import pytest
from billmig.idempotency_keys import (
    METRONOME_UNIQUENESS_KEY_MAX,
    STRIPE_IDEMPOTENCY_KEY_MAX,
    idempotency_key,
    metronome_uniqueness_key,
)


def test_the_key_names_the_migration_the_step_and_the_object() -> None:
    assert idempotency_key("wave-1", "stripe.cancel", "sub_123") == "wave-1:stripe.cancel:sub_123"
    assert idempotency_key("wave-1", "metronome.prepare") == "wave-1:metronome.prepare"


def test_a_new_revision_is_a_new_key_and_the_first_revision_adds_nothing() -> None:
    first = idempotency_key("wave-1", "metronome.contract", "cus_1")
    assert idempotency_key("wave-1", "metronome.contract", "cus_1", revision=1) == first
    assert idempotency_key("wave-1", "metronome.contract", "cus_1", revision=3) == first + ":r3"
    with pytest.raises(ValueError, match="revisions start at 1"):
        idempotency_key("wave-1", "x", revision=0)


def test_long_keys_fit_the_vendor_limit_and_stay_distinct() -> None:
    long_object = "cus_" + "x" * 300
    stripe_key = idempotency_key("wave-1", "stripe.cancel", long_object)
    metronome_key = metronome_uniqueness_key("wave-1", "metronome.commit", long_object)
    assert len(stripe_key) == STRIPE_IDEMPOTENCY_KEY_MAX
    assert len(metronome_key) == METRONOME_UNIQUENESS_KEY_MAX
    assert stripe_key.startswith("wave-1:stripe.cancel:cus_xxx")
    assert metronome_uniqueness_key("wave-1", "metronome.commit", long_object + "y") != metronome_key
    assert metronome_uniqueness_key("wave-1", "metronome.commit", long_object) == metronome_key  # deterministic
