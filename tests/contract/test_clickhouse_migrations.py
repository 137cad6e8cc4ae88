"""A store made before M003 keeps its ingested labels and scores through the migration."""
from pathlib import Path
from server.storage.clickhouse import migrations
from server.storage.clickhouse.client import ClickHouseClient
from server.storage.factory import build_backend, parse_store_url

def test_m003_copies_m001_rows(chdb_folder: Path) -> None:
    url = parse_store_url(f"chdb://{chdb_folder}?database=t_m003_copy")
    client = ClickHouseClient.connect(url)
    for v in (0, 1, 2):
        for st in migrations.statements(v):
            client.command(st)
    client.command("INSERT INTO schema_migrations VALUES (1, 0), (2, 0)")
    client.insert("labels", [("l1", "t1", "helpful", "pass", None, "ana", None, 5, "mlflow", 1, 0)],
                  ["label_id", "trace_id", "criterion", "value", "numeric_value", "reviewer", "rationale",
                   "created_at_ms", "source", "version", "is_deleted"])
    client.insert("scores", [("r1", "j", "t1", "fail", 0.0, None, "why", 7, 1, 0)],
                  ["run_id", "judge", "trace_id", "verdict", "score", "value", "rationale", "created_at_ms",
                   "version", "is_deleted"])
    backend = build_backend(url)
    rows = backend.traces.client.read("SELECT label_id, criterion, value, reviewer FROM labels")
    assert rows == [("l1", "helpful", "pass", "ana")]
    assert backend.traces.client.read("SELECT run_id, verdict, record_id FROM scores") == [("r1", "fail", "")]
