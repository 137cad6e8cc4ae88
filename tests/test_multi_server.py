"""Four stdio servers on one store, each with a client calling steadily (reads and writes): no call
fails with StoreBusyError, every server starts, and every acknowledged write is stored.

Short on purpose; ``python -m bench.multi_server_bench`` runs the 4 x 60 s measurement with the old
behaviour (release only when idle) as a baseline in the same run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.multi_server_bench import drive

pytestmark = pytest.mark.anyio


async def test_four_busy_servers_share_a_store_without_busy_errors(db_path: Path) -> None:
    result = await drive(db_path, servers=4, seconds=6, rate=4, env={"TRACESIEVE_IDLE_RELEASE_MS": "500"})
    assert result["servers_failed"] == []
    assert (result["busy_errors"], result["other_errors"], result["writes_lost"]) == (0, 0, 0)
    assert result["writes_acknowledged"] >= 4, "each server wrote"
