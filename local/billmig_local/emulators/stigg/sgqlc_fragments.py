"""A client-side fix the SDK needs: sgqlc 16.x leaves out fragments spread inside inline fragments.

`stigg-api-client` 6.25 renders its documents with sgqlc, whose `SelectionList.__collect_fragments__` walks named
fragments and plain selections but not inline fragments (`... on PackageFeatureEntitlement { ...Fragment }`). Twelve
of the SDK's documents (among them `provision_subscription`, `get_active_subscriptions`, `get_subscription`,
`get_customer_by_id`) therefore spread fragments they never define, which GraphQL validation rejects
("Unknown fragment"). The emulator validates like Stigg's server, so callers apply this fix before using those
operations; with it all of the SDK's documents validate against Stigg's schema.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import sgqlc.operation

_original = sgqlc.operation.SelectionList.__collect_fragments__


def _collect_fragments(self: Any, fragments: OrderedDict[str, Any] | None = None) -> OrderedDict[str, Any]:
    fragments = _original(self, fragments)
    for inline in self.__casts__.values():
        inline.__collect_fragments__(fragments)
    return fragments


def include_fragments_in_inline_fragments() -> None:
    """Patch sgqlc once per process so every rendered document defines every fragment it spreads."""
    if sgqlc.operation.SelectionList.__collect_fragments__ is not _collect_fragments:
        sgqlc.operation.SelectionList.__collect_fragments__ = _collect_fragments
