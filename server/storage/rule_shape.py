"""What a rule judge compiles to in either engine's SQL (``duckdb/rule_sql.py``,
``clickhouse/rule_sql.py``): the dialects differ, the shape of the answer does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RuleSql:
    """``pre`` columns computed first (in order, each may use the earlier ones), then the three
    result expressions over them; ``params`` are the spec's values, bound as parameters."""

    verdict: str
    score: str
    reason: str
    pre: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    needs_spans: bool = False
    #: Parameters holding a regex, for an engine whose regex dialect may refuse some (ClickHouse's
    #: RE2: the store checks them first and leaves the rule to Python if refused).
    regexes: tuple[str, ...] = ()
