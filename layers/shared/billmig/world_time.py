"""The router's idea of "now", for checks it must make before a vendor does (Stripe's meter event time window).

On AWS it is the host's clock. The local stack runs on a world clock that can be ahead of the host's; its Lambda
bridge tells the functions by how much in `BILLMIG_CLOCK_OFFSET_SECONDS` (never set on AWS).
"""

from __future__ import annotations

import os
import time

OFFSET_VARIABLE = "BILLMIG_CLOCK_OFFSET_SECONDS"


def now() -> float:
    return time.time() + float(os.environ.get(OFFSET_VARIABLE) or 0)
