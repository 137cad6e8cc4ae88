"""The only place errors are translated for the outside world.

MCP: a ``TracesieveError`` or a pydantic validation error becomes a ``ToolError`` whose text
reaches the model verbatim (any other exception is a bug: the SDK masks it and logs the
traceback). CLI: the same errors become click exceptions with exit 2 for bad input, 1 otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import click
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from tools.errors import InvalidInputError, TracesieveError

P = ParamSpec("P")
R = TypeVar("R")


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: which argument, what was wrong."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(p) for p in problem["loc"]) or "arguments"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"Invalid {where}: {message}." if not message.endswith(".") else f"Invalid {where}: {message}")
    return "\n".join(lines)


def surface_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a sync MCP tool so anticipated failures reach the model as readable ToolErrors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TracesieveError as error:
            raise ToolError(str(error)) from error
        except ValidationError as error:
            raise ToolError(describe_validation_error(error)) from error

    return wrapper


def surface_errors_async(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``surface_errors`` for async tools (those that sample or report progress)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except TracesieveError as error:
            raise ToolError(str(error)) from error
        except ValidationError as error:
            raise ToolError(describe_validation_error(error)) from error

    return wrapper


@contextmanager
def cli_errors() -> Iterator[None]:
    """Map tracesieve errors to click's: usage problems exit 2, everything else 1."""
    try:
        yield
    except InvalidInputError as error:
        raise click.UsageError(str(error)) from error
    except ValidationError as error:
        raise click.UsageError(describe_validation_error(error)) from error
    except TracesieveError as error:
        raise click.ClickException(str(error)) from error
