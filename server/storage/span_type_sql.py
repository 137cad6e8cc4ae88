"""A span's canonical type as a SQL expression, for every engine (DuckDB and ClickHouse both read it).

Stores may hold legacy names (``CHAT_MODEL`` from older loads); grouping by this expression puts
them in one bucket with the canonical name (``tools.span_types``).
"""

from __future__ import annotations

from tools.models import SPAN_TYPES
from tools.span_types import SYNONYMS

#: ``span_type`` mapped to its canonical name; built from constants only (no user text).
SPAN_TYPE_SQL = "CASE span_type " + " ".join(
    f"WHEN '{name}' THEN '{target}'" for name, target in SYNONYMS.items() if name in SPAN_TYPES) + " ELSE span_type END"
