"""Stigg's own GraphQL schema, taken from the SDK's generated schema so the SDK's documents validate unchanged.

`stigg-api-client` ships its schema as sgqlc types; `__to_graphql__()` renders it as SDL wrapped in a `schema { }`
block that also declares the built-in scalars. Unwrapped, stripped of those and given a root operation block, it is
plain SDL that graphql-core builds (about 1 s, hence cached per process).
"""

from __future__ import annotations

import functools
import re

from graphql import GraphQLSchema, build_schema

_BUILT_IN_SCALARS = {"Int", "Float", "String", "Boolean", "ID"}
_SCALAR_LINE = re.compile(r"^\s*scalar (\w+)\s*$")


def stigg_sdl() -> str:
    """The SDK's schema as standalone SDL."""
    from stigg.generated.schema import schema as sdk_schema

    wrapped: str = sdk_schema.__to_graphql__()
    lines = wrapped.strip().splitlines()
    if not (lines[0].strip() == "schema {" and lines[-1].strip() == "}"):
        raise RuntimeError("unexpected shape of stigg.generated.schema.__to_graphql__()")
    body = []
    for line in lines[1:-1]:
        scalar = _SCALAR_LINE.match(line)
        if scalar and scalar.group(1) in _BUILT_IN_SCALARS:
            continue
        body.append(line[2:] if line.startswith("  ") else line)
    body.append("schema { query: Query mutation: Mutation }")
    return "\n".join(body) + "\n"


@functools.cache
def stigg_schema() -> GraphQLSchema:
    return build_schema(stigg_sdl())
