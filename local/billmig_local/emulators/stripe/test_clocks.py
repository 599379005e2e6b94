"""Test clocks: customers attached to one live at its `frozen_time`; advancing it runs their billing up to there."""

from __future__ import annotations

from typing import Any

from .api_call import ApiCall, as_int
from .errors import StripeError
from .listing import page
from .object_shapes import shaped

_DELETES_AFTER = 30 * 86400


def create_clock(call: ApiCall) -> dict[str, Any]:
    state = call.state
    frozen = as_int(call.get("frozen_time"))
    if frozen is None:
        raise StripeError(400, "Missing required param: frozen_time.", code="parameter_missing", param="frozen_time")
    clock = shaped(
        "test_helpers.test_clock",
        id=state.new_id("clock"),
        created=int(state.world_now()),
        deletes_after=int(state.world_now()) + _DELETES_AFTER,
        frozen_time=frozen,
        name=call.get("name"),
        status="ready",
        status_details={},
    )
    return state.put(clock)


def retrieve_clock(call: ApiCall) -> dict[str, Any]:
    return call.state.get("test_helpers.test_clock", call.path["test_clock"], "test_clock")


def list_clocks(call: ApiCall) -> dict[str, Any]:
    return page(list(reversed(call.state.all("test_helpers.test_clock"))), call.params, call.url)


def delete_clock(call: ApiCall) -> dict[str, Any]:
    clock = call.state.get("test_helpers.test_clock", call.path["test_clock"], "test_clock")
    call.state.store.delete("test_helpers.test_clock", clock["id"])
    return {"id": clock["id"], "object": "test_helpers.test_clock", "deleted": True}


def advance_clock(call: ApiCall) -> dict[str, Any]:
    """Stripe advances asynchronously (`status=advancing`); the emulator finishes before answering, so `ready`."""
    state = call.state
    clock = dict(state.get("test_helpers.test_clock", call.path["test_clock"], "test_clock"))
    target = as_int(call.get("frozen_time"))
    if target is None or target <= clock["frozen_time"]:
        raise StripeError(
            400,
            "The test clock can only be advanced to a time after its current frozen_time.",
            param="frozen_time",
        )
    clock["frozen_time"] = target
    state.put(clock)
    call.engine.catch_up(clock_id=clock["id"])
    return clock
