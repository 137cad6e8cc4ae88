"""Who a label belongs to: a person who confirmed it, or the agent that wrote it.

Labels are ground truth only when a person decided them. An agent calling label_trace can type
any reviewer name, so the MCP server records a label as a person's only when the person confirms
it through their client (elicitation); otherwise it is attributed to the agent as
``agent:<client name>``, and calibration can leave those out.
"""

from __future__ import annotations

AGENT_PREFIX = "agent:"


def agent_reviewer(client_name: str | None) -> str:
    """The reviewer recorded for a label no person confirmed, e.g. 'agent:claude-code'."""
    return AGENT_PREFIX + (client_name or "unknown-client").strip().replace(" ", "-")[:80]


def is_agent(reviewer: str | None) -> bool:
    return bool(reviewer) and reviewer.startswith(AGENT_PREFIX)
