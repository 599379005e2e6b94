"""Naming a deployed function the way a developer thinks of it: its directory, its logical id or its real name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def function_directories(template: Path = REPO_ROOT / "template.yaml") -> dict[str, str]:
    """functions/<dir>/ -> the logical id of the function built from it."""
    from billmig_local.packaging import load_template

    found: dict[str, str] = {}
    for logical_id, resource in load_template(template)["Resources"].items():
        code_uri = str(resource.get("Properties", {}).get("CodeUri", ""))
        if resource["Type"] == "AWS::Serverless::Function" and code_uri.startswith("functions/"):
            found[code_uri.removeprefix("functions/").strip("/")] = logical_id
    return found


def deployed_function_name(wanted: str, cloudformation: Any, stack_name: str) -> str:
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::Lambda::Function"
    }
    logical_id = function_directories().get(wanted, wanted)
    if logical_id in functions:
        return str(functions[logical_id])
    if wanted in functions.values():
        return wanted
    known = ", ".join(sorted(function_directories()))
    raise LookupError(f"no function {wanted!r} in stack {stack_name}; name one of: {known}")
