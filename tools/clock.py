"""The wall clock in epoch milliseconds, the unit every stored timestamp uses.

Tools take ``now_ms`` as an argument rather than reading the clock, so a search pages against
one fixed "now" and tests can pin time; this is the one place the entry points read it.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
