"""The benchmark's Task: one vendor read (the emulator adds its configured latency), as a migration step would make."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{os.environ['VENDOR_URL']}/v1/customers/{event['customer']}",
        headers={"Authorization": f"Bearer {os.environ['VENDOR_KEY']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return {"customer": json.loads(response.read())["id"]}
