"""The console's pages, rendered on the server (Jinja2); the browser only draws the graph and refreshes live pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from billmig_cli.console.graph import COLOURS, execution_dot, state_element_id
from billmig_cli.console.history import Outcome, cause_message, pretty_json
from billmig_cli.console.source import ConsoleSource, duration_seconds
from billmig_cli.executions import aws_console_url

HERE = Path(__file__).parent
STATIC = HERE / "static"
GRAPH_LIBRARY = STATIC / "vendor" / "viz-global.js"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
SELECTED_VISITS_SHOWN = 50
HISTORY_PAGE = 1000  # events per page of the history table, as the Step Functions console loads them


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def execution_path(arn: str, **query: str | None) -> str:
    params = {k: v for k, v in query.items() if v is not None}
    return f"/executions/{quote(arn, safe=':')}" + (f"?{urlencode(params)}" if params else "")


def create_app(source: ConsoleSource) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.globals.update(
        duration=_duration,
        when=_when,
        execution_path=execution_path,
        colours={o.value: c for o, c in COLOURS.items()},
        outcomes=[o.value for o in Outcome],
        state_element_id=state_element_id,
        local=source.local,
        graph_library=GRAPH_LIBRARY.exists(),
        quote=quote,
    )

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def executions_page(request: Request) -> Response:
        status = request.query_params.get("status") or None
        machine = request.query_params.get("machine") or None
        machines = source.state_machines()
        rows = [
            {**e, "machine": e["stateMachineArn"].rsplit(":", 1)[-1], "seconds": duration_seconds(e)}
            for e in source.all_executions(status, machine)
        ]
        counts: dict[str, dict[str, int]] = {}
        for execution in source.all_executions(None, machine) if status else rows:
            by_status = counts.setdefault(execution["stateMachineArn"], {})
            by_status[execution["status"]] = by_status.get(execution["status"], 0) + 1
        return page(
            request,
            "executions.html",
            {
                "machines": machines,
                "counts": counts,
                "executions": rows,
                "status": status,
                "machine": machine,
                "statuses": STATUSES,
                "live": any(r["status"] == "RUNNING" for r in rows),
            },
        )

    def execution_page(request: Request) -> Response:
        arn = request.path_params["arn"]
        try:
            description, events, analysis = source.analysis(arn)
        except ClientError as exc:
            return page(request, "missing.html", {"what": f"execution {arn}", "why": str(exc)}, 404)
        selected_state = request.query_params.get("state") or None
        iteration = request.query_params.get("iteration") or None
        event_id = request.query_params.get("event")
        link_query = {"iteration": iteration} if iteration else {}
        link = execution_path(arn, **link_query) + ("&" if link_query else "?") + "state="
        dot = execution_dot(source.definition(description), analysis.states, link=link)

        visits = analysis.visits_of(selected_state, None) if selected_state else []
        if selected_state and iteration:
            visits = [v for v in visits if v.iteration == iteration] or visits
        selected_visit = visits[0] if visits else None
        rows = analysis.rows
        if iteration:
            rows = [
                r for r in rows if r.iteration and (r.iteration == iteration or r.iteration.startswith(iteration + "/"))
            ]
        event = analysis.events.get(int(event_id)) if event_id and event_id.isdigit() else None
        pages = max(1, -(-len(rows) // HISTORY_PAGE))
        wanted = request.query_params.get("page", "")
        page_number = min(pages, max(1, int(wanted))) if wanted.isdigit() else 1
        shown = rows[(page_number - 1) * HISTORY_PAGE : page_number * HISTORY_PAGE]
        keep = {k: v for k, v in request.query_params.items() if k != "page"}
        return page(
            request,
            "execution.html",
            {
                "execution": description,
                "machine": description["stateMachineArn"].rsplit(":", 1)[-1],
                "seconds": duration_seconds(description),
                "batch": source.batch_of(arn),
                "aws_link": None if source.local else aws_console_url(arn),
                "dot": dot,
                "states": analysis.states,
                "maps": [m for m in analysis.maps.values() if m.state not in analysis.map_run_states.values()],
                "map_runs": [
                    {**run, "state": analysis.map_run_states.get(run["mapRunArn"], "")} for run in source.map_runs(arn)
                ],
                "rows": shown,
                "row_count": len(rows),
                "pages": pages,
                "page_number": page_number,
                "page_link": lambda n: "?" + urlencode({**keep, "page": str(n)}),
                "row_query": (f"&iteration={quote(iteration)}" if iteration else ""),
                "event_count": len(events),
                "selected_state": selected_state,
                "visits": visits[:SELECTED_VISITS_SHOWN],
                "visit_total": len(visits),
                "selected_visit": selected_visit,
                "iteration": iteration,
                "event": event,
                "event_json": json.dumps(event, indent=2, default=str) if event else "",
                "pretty": pretty_json,
                "cause_message": cause_message,
                "live": description["status"] == "RUNNING",
            },
        )

    def batches_page(request: Request) -> Response:
        wanted = request.query_params.get("batch_id")
        if wanted:
            return RedirectResponse(f"/batches/{quote(wanted, safe='')}", status_code=303)
        batches = source.batches()
        return page(
            request,
            "batches.html",
            {
                "batches": batches,
                "live": any(e["status"] == "RUNNING" for runs in batches.values() for e in runs),
            },
        )

    def batch_page(request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        try:
            customers = source.customers(batch_id)
        except (ClientError, BotoCoreError, KeyError) as exc:
            return page(request, "missing.html", {"what": f"batch {batch_id}", "why": f"progress table: {exc}"}, 404)
        runs = source.batches().get(batch_id, [])
        handled: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            _, _, analysis = source.analysis(run["executionArn"])
            values = analysis.iteration_values()
            for customer in customers:
                labels = values.get(customer.customer_id, [])
                for label in labels:
                    failure = next(
                        (
                            v
                            for v in analysis.visits
                            if v.iteration == label and v.error is not None and v.ended_in_failure
                        ),
                        None,
                    )
                    handled.setdefault(customer.customer_id, []).append(
                        {
                            "execution": run,
                            "iteration": label,
                            "href": execution_path(run["executionArn"], iteration=label),
                            "cause": cause_message(failure.cause) if failure else None,
                            "error": failure.error if failure else None,
                        }
                    )
                named = {s["runner"] for s in customer.steps if s["runner"]}
                if not labels and run["name"] in named:
                    handled.setdefault(customer.customer_id, []).append(
                        {"execution": run, "iteration": None, "href": execution_path(run["executionArn"])}
                    )
        phases: dict[str, int] = {}
        for customer in customers:
            phases[customer.phase] = phases.get(customer.phase, 0) + 1
        return page(
            request,
            "batch.html",
            {
                "batch_id": batch_id,
                "customers": customers,
                "phases": phases,
                "runs": runs,
                "handled": handled,
                "failed": [c for c in customers if c.phase == "failed"],
                "live": any(r["status"] == "RUNNING" for r in runs) or "running" in phases,
            },
        )

    def health(_: Request) -> Response:
        return HTMLResponse("ok")

    return Starlette(
        routes=[
            Route("/", executions_page),
            Route("/executions/{arn:path}", execution_page),
            Route("/batches", batches_page),
            Route("/batches/{batch_id:path}", batch_page),
            Route("/healthz", health),
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ]
    )
