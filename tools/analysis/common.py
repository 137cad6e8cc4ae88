"""Shared pieces of the analysis tools (profile_traces, error_patterns): windows, formatting, tables.

Both tools return numbers for programs and a markdown rendering for people and models; the
helpers here keep the two renderings consistent (same units, same rounding, same "—" for
unknown) so an agent quoting the markdown quotes the same figure the JSON holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tools.errors import InvalidInputError
from tools.filters.nodes import TIME_UNITS, UNIT_WORDS

#: Units a window may use; seconds and milliseconds are too short to say anything about error rates.
WINDOW_UNITS: tuple[str, ...] = ("m", "h", "d", "w")
MAX_WINDOW_MS = 366 * TIME_UNITS["d"]
_WINDOW = re.compile(r"\s*(\d{1,6})\s*([A-Za-z]+)\s*\Z")


@dataclass(frozen=True)
class Window:
    """A window length as the caller wrote it ('24h') and in milliseconds."""

    text: str
    ms: int


def parse_window(text: str) -> Window:
    """'24h' / '7d' / '30m' / '2w' -> Window. Raises InvalidInputError naming the accepted forms."""
    match = _WINDOW.match(text or "")
    unit = match.group(2).lower() if match else ""
    if not match or unit not in WINDOW_UNITS or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"Invalid window {text!r}. Use a whole number and a unit: "
            + ", ".join(f"{u} ({UNIT_WORDS[u]}s)" for u in WINDOW_UNITS)
            + ", e.g. '24h', '7d' or '30m'.")
    ms = int(match.group(1)) * TIME_UNITS[unit]
    if ms > MAX_WINDOW_MS:
        raise InvalidInputError(f"Window {text!r} is longer than 366 days. Use at most '366d' (or '52w').")
    return Window(text=f"{int(match.group(1))}{unit}", ms=ms)


def ms_text(ms: float | None) -> str:
    """A duration for people: '850 ms', '4.2 s', '3.1 min'; '—' when unknown."""
    if ms is None:
        return "—"
    if abs(ms) < 1_000:
        return f"{ms:.0f} ms"
    if abs(ms) < 60_000:
        return f"{ms / 1_000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def pct_text(share: float | None, digits: int = 0) -> str:
    """0.623 -> '62%'; None -> '—'."""
    return "—" if share is None else f"{share * 100:.{digits}f}%"


def count_text(n: float | None) -> str:
    """12345 -> '12,345'; 1.5e6 -> '1.5M'; None -> '—'."""
    if n is None:
        return "—"
    if abs(n) >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{round(n):,}"


def usd_text(usd: float | None) -> str:
    """Costs span micro-dollars to thousands: keep 2 significant digits below a cent."""
    if usd is None:
        return "—"
    if usd == 0:
        return "$0"
    if abs(usd) < 0.01:  # two significant digits, never scientific notation: $0.000036
        return "$" + f"{float(f'{usd:.2g}'):.10f}".rstrip("0")
    return f"${usd:,.2f}"


def ratio(part: float | None, whole: float | None) -> float | None:
    """part / whole, or None when either is unknown or whole is 0 (no division-by-zero shares)."""
    if part is None or not whole:
        return None
    return part / whole


def md_escape(text: object) -> str:
    """A cell that cannot break the table: pipes escaped, newlines flattened, long text cut."""
    value = " ".join(str(text).split()).replace("|", "\\|")
    return value if len(value) <= 80 else value[:79] + "…"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    """A GitHub-flavoured markdown table; ``right`` lists column indexes to right-align (numbers)."""
    if not rows:
        return ""
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
