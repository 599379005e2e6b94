"""The HTTP surface: `POST /graphql` with `X-API-KEY`; each document is parsed, validated against Stigg's schema
and only then executed, so a document the real API would reject never reaches a resolver."""

from __future__ import annotations

import functools
import json
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import subscriptions
from .environment import Environment
from .errors import (
    BAD_VARIABLES,
    INTERNAL_ERROR,
    PARSE_FAILED,
    RATE_LIMIT_EXCEEDED,
    UNAUTHENTICATED,
    VALIDATION_FAILED,
    RequestRefused,
    error_body,
)
from .resolvers import RootFields, mutation_fields, query_fields
from .schema import stigg_schema

GRAPHQL_PATH = "/graphql"  # the SDK posts to its `api_url` as given; the production URL ends in /graphql

# The SDK (requests/urllib3 2) writes a request's headers and body in two segments; on a kept-alive connection the
# body then waits for the server's delayed ACK (~40 ms a request on Linux). Closing after each reply keeps the
# connection in quick-ACK mode: ~2 ms a request on 127.0.0.1. Stigg itself keeps connections alive.
_CLOSE = {"Connection": "close"}


def _formatted(error: GraphQLError) -> dict[str, Any]:
    body = error.formatted
    body.setdefault("extensions", {})
    return dict(body)


class GraphQLExecutor:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.schema = stigg_schema()
        self.queries = RootFields(query_fields(env))
        self.mutations = RootFields(mutation_fields(env))

    def resolve(self, next_: Any, root: Any, info: Any, **args: Any) -> Any:
        """graphql-core middleware: counts every field resolution (tests prove invalid documents run none)."""
        self.env.resolver_calls += 1
        return next_(root, info, **args)

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one executor per emulator; the SDK resends the same documents
    def _checked(self, query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
        """Parse and validate a document once; the same text is the same verdict against a fixed schema."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return None, [{**_formatted(exc), "extensions": {"code": PARSE_FAILED}}]
        problems = validate(self.schema, document)
        if problems:
            return None, [{**_formatted(p), "extensions": {"code": VALIDATION_FAILED}} for p in problems]
        return document, []

    def run(self, payload: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise RequestRefused(400, BAD_VARIABLES, "POST body must be JSON with a `query` string")
        if not isinstance(payload.get("variables") or {}, dict):
            raise RequestRefused(400, BAD_VARIABLES, "`variables` must be a JSON object")
        document, refusal = self._checked(payload["query"])
        if document is None:
            return 400, {"errors": refusal}
        operation = payload.get("operationName")
        is_mutation = any(
            d.operation == OperationType.MUTATION
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and (operation is None or (d.name and d.name.value == operation))
        )
        with self.env.lock:
            subscriptions.run_due_imports(self.env)
            result = execute(
                self.schema,
                document,
                root_value=self.mutations if is_mutation else self.queries,
                variable_values=payload.get("variables") or {},
                operation_name=operation,
                middleware=[self],
            )
        assert isinstance(result, ExecutionResult)
        return self._response(result)

    def _response(self, result: ExecutionResult) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"data": result.data}
        status = 200
        if result.errors:
            errors = []
            for error in result.errors:
                formatted = _formatted(error)
                if not error.path and "code" not in formatted["extensions"]:
                    formatted["extensions"]["code"] = BAD_VARIABLES  # variables did not coerce: never executed
                    status = 400
                elif "code" not in formatted["extensions"]:
                    formatted["extensions"]["code"] = INTERNAL_ERROR  # a resolver failed unexpectedly
                if formatted["extensions"].get("code") == RATE_LIMIT_EXCEEDED:
                    status = 429
                errors.append(formatted)
            body["errors"] = errors
        return status, body


def build_app(env: Environment) -> Starlette:
    executor = GraphQLExecutor(env)

    async def graphql_endpoint(request: Request) -> Response:
        key = request.headers.get("x-api-key", "").strip()
        if not key or (env.api_key is not None and key != env.api_key):
            return JSONResponse(error_body(UNAUTHENTICATED, "Invalid or missing API key"), 401, _CLOSE)
        try:
            payload = json.loads(await request.body())
        except json.JSONDecodeError:
            return JSONResponse(error_body(BAD_VARIABLES, "POST body is not JSON"), 400, _CLOSE)
        try:
            status, body = await run_in_threadpool(executor.run, payload)
        except RequestRefused as exc:
            return JSONResponse(error_body(exc.code, exc.message), exc.status, _CLOSE)
        return JSONResponse(body, status, _CLOSE)

    # `/graphql` like production; `/` too, so the base URL in endpoints.json works as `api_url` unchanged.
    return Starlette(
        routes=[Route(GRAPHQL_PATH, graphql_endpoint, methods=["POST"]), Route("/", graphql_endpoint, methods=["POST"])]
    )
