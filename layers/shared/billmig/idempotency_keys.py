"""Idempotency keys for every vendor write, as decisions.md (d) sets them: `{migration_id}:{step}[:{object}]`.

The same write in the same run always carries the same key, so a retried or resumed attempt is deduplicated by the
vendor. The step's revision (bumped when a step is claimed again after a permanent failure) joins the key from the
second revision on: both Stripe and Metronome replay a stored error for a reused key, so a fixed cause needs a new
one. Keys over a vendor's length limit keep a readable prefix and end in a digest of the whole key.
"""

from __future__ import annotations

import hashlib

STRIPE_IDEMPOTENCY_KEY_MAX = 255  # Stripe's Idempotency-Key header
METRONOME_UNIQUENESS_KEY_MAX = 128  # Metronome's uniqueness_key (1-128 characters)
STIGG_IDEMPOTENCY_KEY_MAX = 48  # what billmig has always sent Stigg; no documented limit is known
_DIGEST_CHARS = 24


def idempotency_key(
    migration_id: str,
    step: str,
    obj: str | None = None,
    *,
    revision: int = 1,
    max_length: int = STRIPE_IDEMPOTENCY_KEY_MAX,
) -> str:
    if revision < 1:
        raise ValueError(f"revision {revision}: revisions start at 1")
    parts = [migration_id, step, *([obj] if obj else []), *([f"r{revision}"] if revision > 1 else [])]
    key = ":".join(parts)
    if len(key) <= max_length:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{key[: max_length - _DIGEST_CHARS - 1]}:{digest}"


def metronome_uniqueness_key(migration_id: str, step: str, obj: str | None = None, *, revision: int = 1) -> str:
    return idempotency_key(migration_id, step, obj, revision=revision, max_length=METRONOME_UNIQUENESS_KEY_MAX)


USAGE_EVENT_ID_DIGEST = 48  # hex characters: within Stripe's meter event identifier (100) and Metronome's 128


def usage_event_id(customer_id: str, event_id: str) -> str:
    """The Stripe meter event `identifier` and the Metronome `transaction_id` of one source event: the same event,
    sent once, twice or replayed from the dead-letter queue, is counted once by each vendor."""
    digest = hashlib.sha256(f"{customer_id}\x1f{event_id}".encode()).hexdigest()[:USAGE_EVENT_ID_DIGEST]
    return f"usage_{digest}"
