"""Stigg emulator: a real GraphQL server on Stigg's own schema that `stigg-api-client` drives.

    client = Stigg.create_client(api_key, api_url=f"{emulator.url}/graphql", enable_edge=False)

`start(...)` is what `billmig local up` calls. State lives in `state_dir/stigg/state.sqlite` (or in memory). Any
non-empty `X-API-KEY` is accepted unless `api_key=` (or `BILLMIG_STIGG_API_KEY`) configures the one key. POSTs to
`/graphql` (or `/`) are parsed and validated against the schema before any resolver runs. The request log, faults,
latency and the generic rate limit are at `/_emulator/*`; Stigg's limits, the import-task delay and import task
reports at `/_emulator/stigg/*` (see `control.py`). Error codes: `errors.py`. The list queries `customers`,
`subscriptions` and `importIntegrationTasks` filter, sort and page as `listing.py` describes. Callers using the
SDK's own `provision_subscription`, `get_active_subscriptions`, `get_subscription` or `get_customer_by_id` need the
sgqlc fix in `sgqlc_fragments.py`. `RunningEmulator.extra["environment"]` gives in-process tests read access to
the records.
"""

from __future__ import annotations

import os
from pathlib import Path

from billmig_local.clock import WorldClock
from billmig_local.emulators import LocalSecret, StackWiring
from billmig_local.emulators.object_store import ObjectStore
from billmig_local.emulators.server import EmulatorServer, RunningEmulator

from . import subscriptions
from .app import GRAPHQL_PATH, build_app
from .control import StiggControl
from .environment import Environment
from .errors import error_response
from .limits import Limits

RATE_LIMIT_PRESETS = {"stigg": (250 / 60, 250.0), "tight": (5.0, 5.0)}


def start(*, clock: WorldClock, state_dir: Path | None, port: int = 0, api_key: str | None = None) -> RunningEmulator:
    store = ObjectStore(state_dir / "stigg" / "state.sqlite" if state_dir is not None else None)
    env = Environment(store, clock.now, Limits(), api_key=api_key or os.environ.get("BILLMIG_STIGG_API_KEY") or None)
    control = StiggControl(
        build_app(env),
        name="stigg",
        error_response=error_response,
        now=clock.now,
        rate_limit_presets=RATE_LIMIT_PRESETS,
    )
    control.env = env

    def run_due_imports(_old: float, _new: float) -> None:
        with env.lock:
            subscriptions.run_due_imports(env)

    clock.subscribe(run_due_imports)  # a delayed import task lands when `billmig local clock` passes its time
    server = EmulatorServer(control, port=port)
    server.start()
    return RunningEmulator(
        "stigg", server, control, extra={"environment": env, "store": store, "graphql_url": server.url + GRAPHQL_PATH}
    )


STACK_WIRING = StackWiring(
    template_parameters=lambda url: {"StiggApiUrl": f"{url}{GRAPHQL_PATH}"},
    local_secret=LocalSecret(output="StiggApiKeySecretName", value="local-stigg-server-key"),
)
