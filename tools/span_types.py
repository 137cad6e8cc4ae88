"""One span type per kind of work, whichever dialect named it.

Model calls are ``LLM`` in OpenInference, Langfuse (``GENERATION``) and MLflow, but ``CHAT_MODEL``
in MLflow chat spans and OTel GenAI ``chat`` operations; a store that kept both names split every
"model call" question in two (a filter on one name missed the other; profiles showed two buckets).
Readers store the canonical name (MLflow's, where MLflow has one); filters accept every synonym
and match spans stored under any of them, because stores written before this table (and spans
built directly, like the demo's) can still hold ``CHAT_MODEL``. ``filter_explained`` says when a
synonym was used, so nobody wonders why ``CHAT_MODEL`` matched an OpenInference ``LLM`` span.
"""

from __future__ import annotations

from tools.models import SPAN_TYPES

__all__ = ["SYNONYMS", "canonical_span_type", "stored_names", "synonyms_of"]

#: Other names for a canonical type (upper-case): MLflow, Langfuse observation types, OTel GenAI
#: operation names. A name that is itself canonical maps to itself and is not listed.
SYNONYMS: dict[str, str] = {
    "CHAT_MODEL": "LLM", "GENERATION": "LLM", "CHAT": "LLM", "TEXT_COMPLETION": "LLM",
    "GENERATE_CONTENT": "LLM", "COMPLETION": "LLM",
    "EXECUTE_TOOL": "TOOL", "FUNCTION": "TOOL",
    "RETRIEVAL": "RETRIEVER", "EMBEDDINGS": "EMBEDDING",
    "INVOKE_AGENT": "AGENT", "CREATE_AGENT": "AGENT", "INVOKE_WORKFLOW": "WORKFLOW",
}
_CANONICAL = frozenset(SPAN_TYPES)


def canonical_span_type(name: str | None) -> str | None:
    """The canonical type for any spelling (``chat_model`` -> ``LLM``), or None if it names none."""
    if not name:
        return None
    upper = name.strip().upper()
    found = SYNONYMS.get(upper, upper)
    return found if found in _CANONICAL and found != "CHAT_MODEL" else None


def stored_names(canonical: str) -> tuple[str, ...]:
    """The ``span_type`` values a store may hold for ``canonical`` (itself first)."""
    return (canonical, *(name for name, target in SYNONYMS.items() if target == canonical and name in _CANONICAL))


def synonyms_of(canonical: str) -> tuple[str, ...]:
    """Every other accepted spelling of ``canonical``, for filter explanations and docs."""
    return tuple(name for name, target in SYNONYMS.items() if target == canonical)
