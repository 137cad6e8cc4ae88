"""The MCP tool annotations every toolset module uses, defined once.

Hosts read these hints to decide what needs a confirmation: a read-only tool may run freely, a
destructive one may not. ``open_world_hint`` is true only where a call reaches outside the store
(a judge model).
"""

from __future__ import annotations

from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
#: Setting the same value again changes nothing.
IDEMPOTENT_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                   open_world_hint=False)
#: Removes something (kept in a history), so a host may ask before it runs.
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                              open_world_hint=False)
#: Adds a row every call (a label, a correction); nothing is overwritten.
APPEND = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
#: Adds rows, but repeating the same call adds nothing more.
APPEND_IDEMPOTENT = IDEMPOTENT_WRITE
#: Writes add versions and never change or delete existing ones; repeating a call returns the same version.
VERSIONED_WRITE = IDEMPOTENT_WRITE
#: Calls a judge model, which may be outside this machine.
RUN = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
