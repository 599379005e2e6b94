"""Do what `sam build` + `sam package` + the CloudFormation transform do, offline.

Code folders are zipped (a layer's content under `python/`, as `sam build` lays out a Python layer) and handed to an
uploader that returns an `s3://` URI; `DefinitionUri` files are inlined as `Definition`; the SAM transform runs
locally with aws-sam-translator. The result is the plain CloudFormation template AWS would deploy.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from samtranslator.translator.transform import transform

Uploader = Callable[[str, bytes], str]  # (key, zip bytes) -> s3:// URI

_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (`!Ref`, `!Sub`, `!GetAtt`...) as their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


def zip_folder(folder: Path, *, prefix: str = "") -> bytes:
    """A reproducible zip: sorted entries, fixed timestamps, so the same code always has the same hash."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(files):
                path = Path(root) / name
                if path.suffix in _SKIP_SUFFIXES:
                    continue
                info = zipfile.ZipInfo(prefix + str(path.relative_to(folder)), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def package(template: dict[str, Any], base_dir: Path, upload: Uploader) -> dict[str, Any]:
    """Replace local `CodeUri`/`ContentUri` with uploaded zips and inline `DefinitionUri` files."""
    packaged = copy.deepcopy(template)
    for logical_id, resource in packaged.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.setdefault("Properties", {})
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            data = zip_folder(base_dir / props["CodeUri"])
            props["CodeUri"] = upload(f"{logical_id}-{hashlib.sha256(data).hexdigest()[:16]}.zip", data)
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            data = zip_folder(base_dir / props["ContentUri"], prefix="python/")
            props["ContentUri"] = upload(f"{logical_id}-{hashlib.sha256(data).hexdigest()[:16]}.zip", data)
        elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = json.loads((base_dir / props.pop("DefinitionUri")).read_text())
    return packaged


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for names it does not know; we use none."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated: dict[str, Any] = transform(template, parameters or {}, _NoManagedPolicies())
    return translated


def translate_for_lint(template_path: Path) -> dict[str, Any]:
    """Translate with placeholder S3 locations: what cfn-lint needs to check the deployed shape."""
    template = load_template(template_path)
    packaged = package(template, template_path.parent, lambda key, _data: f"s3://billmig-artifacts/{key}")
    return translate(packaged)
