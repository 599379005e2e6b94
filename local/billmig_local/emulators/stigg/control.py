"""The shared control plane plus Stigg's own knobs under `/_emulator/stigg/`.

GET/POST /_emulator/stigg/limits        Stigg's limits (items per call, requests per minute); POST {name: value}
DELETE   /_emulator/stigg/limits        back to the documented defaults, and forget counted requests
GET      /_emulator/stigg/tasks/<id>    an import task: imported/created/updated ids and each skipped row's reason
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billmig_local.emulators.control_plane import CONTROL_PREFIX, EmulatorControl

from .environment import Environment

STIGG_PREFIX = CONTROL_PREFIX + "/stigg/"


class StiggControl(EmulatorControl):
    env: Environment

    async def _control(self, request: Request) -> Response:
        path = request.url.path
        if not path.startswith(STIGG_PREFIX):
            return await super()._control(request)
        what = path[len(STIGG_PREFIX) :].strip("/")
        if what == "limits" and request.method == "GET":
            return JSONResponse(self.env.limits.as_dict())
        if what == "limits" and request.method == "POST":
            try:
                return JSONResponse(self.env.limits.configure(await request.json()))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        if what == "limits" and request.method == "DELETE":
            self.env.limits.reset()
            return JSONResponse(self.env.limits.as_dict())
        if what.startswith("tasks/") and request.method == "GET":
            task_id = what.removeprefix("tasks/")
            task = self.env.get("import_task", task_id) or self.env.get("pending_import_task", task_id)
            if task is None:
                return JSONResponse({"error": "no such task"}, status_code=404)
            return JSONResponse(task)
        return JSONResponse({"error": f"no control endpoint {request.method} {path}"}, status_code=404)
