"""The filter grammar, said once: in the server instructions and as ``tracesieve://filter-grammar``.

Three tools take a filter. Repeating the 1,200-character grammar in each of their schemas cost an
agent ~900 tokens on every turn; the argument description now points to the one copy instead.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tools.filters import fields

GRAMMAR = fields.describe_grammar()
GRAMMAR_URI = "tracesieve://filter-grammar"

FilterArg = Annotated[str, Field(description=(
    f"Search filter (grammar: server instructions, {GRAMMAR_URI}); empty = all. "
    "E.g. attributes.status = 'ERROR'"))]
