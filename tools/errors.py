"""The one exception tree of tracesieve.

``str(error)`` is shown verbatim to agents (as MCP tool errors) and to people (CLI),
so every message says what was wrong and how to fix it, and carries no secrets or reprs.

    TracesieveError
    ├── InvalidInputError    fixable by changing the arguments          CLI exit 2
    │   └── FilterError      a filter string that does not parse/validate; renders a caret excerpt
    ├── NotFoundError        unknown trace / dataset / judge            CLI exit 1
    ├── ConflictError        a name exists with other content           CLI exit 1
    ├── StoreBusyError       the store file is locked by another process CLI exit 1
    ├── IngestError          one file or trace could not be read        CLI exit 1
    └── ProviderError        a judge model call failed; .retryable      CLI exit 1
"""

from __future__ import annotations


class TracesieveError(Exception):
    """Base class: the message is the whole user-facing explanation."""


class InvalidInputError(TracesieveError):
    """The caller can fix this by changing the arguments."""


class FilterError(InvalidInputError):
    """A filter string that does not parse or names an unknown field.

    ``position`` is the 0-based character offset of the offending token, ``length`` its width;
    the message already contains the caret excerpt so it reads well on its own.
    """

    def __init__(self, message: str, *, text: str = "", position: int | None = None, length: int = 1,
                 hint: str = "") -> None:
        self.reason = message
        self.text = text
        self.position = position
        self.length = max(1, length)
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [self.reason]
        if self.position is not None and self.text:
            lines.append("  " + self.text)
            lines.append("  " + " " * self.position + "^" * self.length)
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class NotFoundError(TracesieveError):
    """Something named by the caller does not exist."""


class ConflictError(TracesieveError):
    """The request clashes with something already stored."""


class StoreBusyError(TracesieveError):
    """Another process held the store file for longer than the lock timeout."""


class IngestError(TracesieveError):
    """A file, line or trace that could not be ingested; the rest of the batch still loads."""

    def __init__(self, message: str, *, source: str = "", location: str = "") -> None:
        self.source = source
        self.location = location
        where = source + (f" ({location})" if location else "")
        super().__init__(f"{where}: {message}" if where else message)


class ProviderError(TracesieveError):
    """A judge model call failed. ``retryable`` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)
