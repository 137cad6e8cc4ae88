"""Turning tag selectors and a filter into one AST, and traces into strata and record payloads."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from tools.filters import parser
from tools.datasets.models import STRATA_DIMENSIONS, Candidate
from tools.errors import InvalidInputError
from tools.filters.nodes import And
from tools.previews import preview

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIXED_DIMS = tuple(d for d in STRATA_DIMENSIONS if not d.startswith("tag:"))


def _closest(word: str, options: list[str]) -> str:
    guess = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" Did you mean '{guess[0]}'?" if guess else ""


def _listed(options: list[str], limit: int = 10) -> str:
    shown = sorted(options)[:limit]
    more = f" (and {len(options) - limit} more)" if len(options) > limit else ""
    return ", ".join(shown) + more


def parse_selectors(tags: list[str]) -> list[tuple[str, str | None]]:
    """'key' -> (key, None); 'key=value' -> (key, value). Order kept, duplicates dropped."""
    out: list[tuple[str, str | None]] = []
    for item in tags:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not key or _CONTROL.search(item):
            raise InvalidInputError(
                f"Tag selector '{item}' is not 'key' or 'key=value'. Example: tags=['eval_candidate=error_case'].")
        pair = (key, value.strip() if eq else None)
        if pair not in out:
            out.append(pair)
    return out


def check_tags(selectors: list[tuple[str, str | None]], catalog: dict[str, list[str]]) -> None:
    """Refuse tags no trace carries, naming the closest key or value that does exist."""
    for key, value in selectors:
        if key not in catalog:
            known = list(catalog)
            listed = f" Tag keys in the store: {_listed(known)}." if known else " No trace has any tag yet; use tag_trace."
            raise InvalidInputError(f"No trace has tag '{key}'.{_closest(key, known)}{listed}")
        values = catalog[key]
        if value is not None and value not in values and len(values) < 1000:
            raise InvalidInputError(
                f"No trace has tag '{key}' = '{value}'.{_closest(value, values)} Values of '{key}': "
                f"{_listed(values)}. Use '{key}' alone to select any value.")


def _quote_key(key: str) -> str:
    return "`" + key.replace("`", "``") + "`"


def _quote_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def selection_expr(selectors: list[tuple[str, str | None]], filter_text: str | None) -> Any:
    """tags (ORed) AND filter, as one AST; the user's filter is parsed alone so its error positions are right."""
    parts = []
    if selectors:
        text = " OR ".join(f"tags.{_quote_key(k)} IS NOT NULL" if v is None
                           else f"tags.{_quote_key(k)} = {_quote_value(v)}" for k, v in selectors)
        parts.append(parser.parse(text))
    if filter_text and filter_text.strip():
        parts.append(parser.parse(filter_text))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(items=tuple(parts))


def check_dimensions(dims: list[str], catalog: dict[str, list[str]]) -> None:
    for dim in dims:
        if dim.startswith("tag:"):
            key = dim[4:].strip()
            if not key:
                raise InvalidInputError("stratify_by 'tag:' needs a tag key, e.g. 'tag:eval_candidate'.")
            if key not in catalog:
                raise InvalidInputError(
                    f"stratify_by '{dim}': no trace has tag '{key}'.{_closest(key, list(catalog))} "
                    f"Tag keys: {_listed(list(catalog)) or 'none'}.")
        elif dim not in _FIXED_DIMS:
            raise InvalidInputError(
                f"Unknown stratify_by dimension '{dim}'.{_closest(dim, list(STRATA_DIMENSIONS))} "
                f"Use one of: {', '.join(STRATA_DIMENSIONS)}.")


def latency_thresholds(candidates: list[Candidate]) -> tuple[int, int] | None:
    """(p50, p90) of execution time by nearest rank: the fast / medium / slow tier edges."""
    times = sorted(c.execution_time_ms for c in candidates if c.execution_time_ms is not None)
    if not times:
        return None

    def rank(q: float) -> int:
        return times[max(0, min(len(times) - 1, int(-(-q * len(times) // 1)) - 1))]

    return rank(0.5), rank(0.9)


def dimension_value(c: Candidate, dim: str, tiers: tuple[int, int] | None) -> str:
    if dim == "status":
        return c.status
    if dim in ("model", "environment", "prompt_version"):
        return getattr(c, dim) or "(none)"
    if dim == "tool_path":
        return ">".join(c.tool_names) or "(no tools)"
    if dim == "span_path":
        return ">".join(c.span_types) or "(no spans)"
    if dim == "latency_tier":
        if c.execution_time_ms is None or tiers is None:
            return "unknown"
        p50, p90 = tiers
        return "fast" if c.execution_time_ms <= p50 else "medium" if c.execution_time_ms <= p90 else "slow"
    return c.tags.get(dim[4:], "(untagged)")


def stratum_label(values: dict[str, str], dims: list[str]) -> str:
    return "|".join(f"{d}={values[d]}" for d in dims) if dims else "all"


_NON_WORD = re.compile(r"[\W\d_]+")


def near_duplicate_key(request_head: str | None) -> str | None:
    """The request's words, lower-cased, without digits/punctuation: equal keys = near-identical requests."""
    text = preview(request_head, chars=2000, is_request=True)
    if not text:
        return None
    key = " ".join(_NON_WORD.sub(" ", text.casefold()).split())
    return key or None


def payload(raw: str | None) -> Any:
    """Stored request/response text as JSON when it is JSON, else the text itself."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def as_inputs(raw: str | None) -> dict[str, Any]:
    """Records' inputs are a JSON object (MLflow requires one): non-objects are wrapped as {'request': …}."""
    value = payload(raw)
    return value if isinstance(value, dict) else {"request": value}
