"""The v1 wire decoder inverts the SDK's own form encoder for any nesting of maps, lists and scalars."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from billmig_local.emulators.stripe.form_encoding import decode_form
from hypothesis import given, settings
from hypothesis import strategies as st
from stripe._encode import _api_encode

_keys = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
_scalars = st.one_of(st.text(max_size=12), st.integers(-(10**9), 10**9), st.booleans())
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3), st.dictionaries(_keys, inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)


def _as_sent(value: Any, *, list_item: bool = False) -> Any:
    """What survives the wire: every scalar as its string, booleans as true/false (the SDK writes a boolean that is
    directly a list item with Python's `str`, so `False`)."""
    if isinstance(value, bool) and not list_item:
        return "true" if value else "false"
    if isinstance(value, dict):
        return {k: _as_sent(v) for k, v in value.items()}
    if isinstance(value, list):  # a list inside a list is re-encoded as a map of indices: plain rules again
        return [_as_sent(v, list_item=not list_item) for v in value]
    return str(value)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.dictionaries(_keys.filter(lambda k: k not in ("metadata", "payload")), _values, min_size=1, max_size=4))
def test_decoder_inverts_the_sdk_encoder(params: dict[str, Any]) -> None:
    body = urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")
    assert decode_form(body.encode()) == _as_sent(params)


def test_metadata_keys_that_look_like_indices_stay_a_map() -> None:
    body = urlencode(list(_api_encode({"metadata": {"0": "a", "1": "b"}, "items": [{"price": "p"}]})))
    assert decode_form(body.encode()) == {"metadata": {"0": "a", "1": "b"}, "items": [{"price": "p"}]}
