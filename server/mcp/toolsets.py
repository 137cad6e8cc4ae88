"""Toolsets: which families of tools a server exposes (``--toolsets`` / ``TRACESIEVE_TOOLSETS``).

Every tool definition is paid for in an agent's context on every turn, and hosts cap the number of
tools (Cursor at about 40), so like GitHub's and MLflow's MCP servers a server exposes only the
families a workflow needs. A toolset is one module of ``server.mcp`` with ``register(mcp, store)``;
adding one is one line in ``TOOLSETS``. Groups name the steps of the loop in the server
instructions (observe, curate, judge, calibrate, monitor); ``all`` is everything.
"""

from __future__ import annotations

import difflib
from types import ModuleType

from server.mcp import analysis, calibration, datasets, judges, monitors, traces
from tools.errors import InvalidInputError

#: Toolset name -> the module that registers its tools.
TOOLSETS: dict[str, ModuleType] = {
    "traces": traces,
    "analysis": analysis,
    "datasets": datasets,
    "judges": judges,
    "calibration": calibration,
    "monitors": monitors,
}
#: Toolset name -> the feature-store families (``server.storage.backend.FeatureStores``) it needs;
#: a server publishes a toolset only when its store has every one of them.
NEEDS: dict[str, tuple[str, ...]] = {
    "traces": (),
    "analysis": ("analytics",),
    "datasets": ("datasets",),
    "judges": ("judges",),
    "calibration": ("labels", "queue", "calibration"),
    "monitors": ("monitors", "judges"),
}
#: Names for steps of the loop, each a set of toolsets.
GROUPS: dict[str, tuple[str, ...]] = {
    "observe": ("traces", "analysis"),
    "curate": ("traces", "datasets"),
    "judge": ("judges",),
    "calibrate": ("calibration",),
    "monitor": ("monitors",),
}
#: What ``tracesieve serve`` exposes unless told otherwise: search, read, tag and build datasets.
DEFAULT = ("traces", "analysis", "datasets")
ENV_VAR = "TRACESIEVE_TOOLSETS"


def resolve(spec: str | None) -> tuple[str, ...]:
    """Toolset names, in registry order, from a comma-separated spec ('default', 'all', groups, names)."""
    if spec is None or not spec.strip():
        return DEFAULT
    chosen: set[str] = set()
    for word in (w.strip().lower() for w in spec.split(",") if w.strip()):
        if word == "all":
            chosen.update(TOOLSETS)
        elif word == "default":
            chosen.update(DEFAULT)
        elif word in GROUPS:
            chosen.update(GROUPS[word])
        elif word in TOOLSETS:
            chosen.add(word)
        else:
            names = ["all", "default", *GROUPS, *TOOLSETS]
            close = difflib.get_close_matches(word, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InvalidInputError(f"Unknown toolset '{word}'.{hint} Use a comma-separated list of: "
                                    f"{', '.join(names)}. Example: --toolsets observe,curate")
    return tuple(name for name in TOOLSETS if name in chosen)
