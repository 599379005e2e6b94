"""What `sam build` makes is what Lambda runs: every built handler imports with the built layer on Python 3.12.

`make test` runs `sam build` first and passes its output directory; the import happens in a fresh python3.12 process
whose path holds only the built function and the built layer (as Lambda's /var/task and /opt/python).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from billmig_local.packaging import load_template
from suite import REPO

BUILD_DIR = os.environ.get("BILLMIG_SAM_BUILD_DIR")
PYTHON312 = os.environ.get("BILLMIG_PYTHON312")
FUNCTIONS = sorted(
    name
    for name, resource in load_template(REPO / "template.yaml")["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
)
IMPORT_HANDLER = """
import json, sys
sys.path[:0] = sys.argv[1:3]
import app
print(json.dumps({"version": list(sys.version_info[:2]), "model": app.lambda_handler.event_model.__name__,
                  "billmig": __import__("billmig").__file__}))
"""

needs_build = pytest.mark.skipif(not BUILD_DIR, reason="run through `make test`, which runs `sam build` first")


@needs_build
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_built_handler_imports_with_the_built_layer(function: str) -> None:
    assert BUILD_DIR and PYTHON312, "make test passes BILLMIG_SAM_BUILD_DIR and BILLMIG_PYTHON312"
    build = REPO / BUILD_DIR
    code, layer = build / function, build / "SharedLayer" / "python"
    assert (code / "app.py").is_file(), f"{function} not built: {code}"
    done = subprocess.run(
        [PYTHON312, "-I", "-c", IMPORT_HANDLER, str(code), str(layer)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["version"] == [3, 12]
    assert Path(found["billmig"]).is_relative_to(layer)  # the layer's copy, not the development tree's
