"""The ClickHouse schema, as versioned migrations (this engine's own series, not DuckDB's).

Layout after Langfuse's ``packages/shared/clickhouse/migrations`` (unclustered and clustered
variants of the same statements): a day before the id in the sort key, so time-bounded
searches read a few granules per day; bloom filters for id lookups; ZSTD on large text. Days
and 30-day partitions are ``intDiv`` of the epoch-ms column itself (not ``toDate(...)`` of a
conversion): ClickHouse knows ``intDiv`` is monotonic, so ``timestamp_ms > X`` prunes both
(checked with ``EXPLAIN indexes = 1``; ``toDate(fromUnixTimestamp64Milli(..))`` pruned nothing).
Tracesieve has no tenant key: a team is a database (``chdb:///FOLDER?database=team``,
``clickhouse://…/team``).

* ``spans`` is keyed ``(trace_id, span_id)``: OTLP delivers at least once and in pieces, so a
  re-sent span is a new version of the same row (``ReplacingMergeTree(version, is_deleted)``).
  Partitions are 30-day spans of the span's own start, which a re-sent span keeps.
* ``traces`` is keyed ``(day, trace_id)`` and re-derived after each write from the de-duplicated
  spans. A late root can move a trace to an earlier day; the writer then also writes a tombstone
  (``is_deleted = 1``) under the old key, since ReplacingMergeTree only folds equal keys.
* ``tags`` is keyed ``(key, trace_id)``: a tag filter reads one key's range (1.7x faster than
  ``(trace_id, key)`` at 100k traces); a page's tags are found by the bloom filter on ``trace_id``.
  Removing a tag writes a tombstone. ``tag_history`` is append-only.

Every migration is a list of statements with ``{table_engine}`` placeholders: ``ReplacingMergeTree``
for one node, ``ReplicatedReplacingMergeTree`` for a cluster (``ON CLUSTER`` added). Each statement
must be safe to run again, since a process can die between two of them and the migration is then
re-run from its start: ``IF NOT EXISTS`` for DDL, inserts into replacing tables (a repeat folds into
the same keys), and a ``RENAME`` as a ``Guarded`` step, skipped once its target exists. Never change
what a released migration does; append one.

Partitions and ``FINAL``: ClickHouse uses a partition's min-max only for conditions on sorting-key
columns under ``FINAL``, so ``EXPLAIN`` of a ``FINAL`` read with ``timestamp_ms > X`` shows
``Partition: Condition: true``; the primary key, whose first element is the day, then drops every
part outside the bound, and the parts and granules read are those of the same read without
``FINAL`` (``tests/contract/test_time_pruning.py``). Putting the partition expression first in the
sorting key would restore the partition step but cost the day-level pruning inside a partition
(checked: 74 of 74 granules instead of 6 for a one-day bound), so the keys stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Guarded:
    """A statement run only while ``unless_table`` does not exist (``RENAME`` has no ``IF NOT EXISTS``)."""
    sql: str
    unless_table: str

M001_CORE: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS spans{on_cluster} (
        trace_id        String,
        span_id         String,
        parent_span_id  Nullable(String),
        name            Nullable(String),
        span_type       LowCardinality(String),
        start_time_ns   Int64,
        end_time_ns     Int64,
        status          LowCardinality(String),
        status_message  Nullable(String),
        inputs          Nullable(String) CODEC(ZSTD(3)),
        outputs         Nullable(String) CODEC(ZSTD(3)),
        model           Nullable(String),
        input_tokens    Nullable(Int64),
        output_tokens   Nullable(Int64),
        tool_name       Nullable(String),
        attributes      String CODEC(ZSTD(3)),
        events          String CODEC(ZSTD(3)),
        version         UInt64,
        is_deleted      UInt8 DEFAULT 0,
        INDEX idx_span_type span_type TYPE set(64) GRANULARITY 4,
        INDEX idx_tool_name tool_name TYPE bloom_filter(0.01) GRANULARITY 4
    ) ENGINE = {engine}
    PARTITION BY intDiv(start_time_ns, 2592000000000000)
    ORDER BY (trace_id, span_id)""",
    """CREATE TABLE IF NOT EXISTS traces{on_cluster} (
        trace_id          String,
        timestamp_ms      Int64,
        execution_time_ms Nullable(Int64),
        status            LowCardinality(String),
        name              Nullable(String),
        request           Nullable(String) CODEC(ZSTD(3)),
        response          Nullable(String) CODEC(ZSTD(3)),
        session_id        Nullable(String),
        user_id           Nullable(String),
        model             Nullable(String),
        prompt_version    Nullable(String),
        environment       Nullable(String),
        input_tokens      Nullable(Int64),
        output_tokens     Nullable(Int64),
        metadata          String CODEC(ZSTD(3)),
        source            Nullable(String),
        source_id         Nullable(String),
        has_root          UInt8,
        span_count        Int32,
        error_count       Int32,
        tool_names        Array(String),
        ingested_at_ms    Int64,
        version           UInt64,
        is_deleted        UInt8 DEFAULT 0,
        INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4
    ) ENGINE = {engine}
    PARTITION BY intDiv(timestamp_ms, 2592000000)
    ORDER BY (intDiv(timestamp_ms, 86400000), trace_id)""",
    """CREATE TABLE IF NOT EXISTS tags{on_cluster} (
        trace_id   String,
        key        String,
        value      String,
        set_at_ms  Int64,
        set_by     Nullable(String),
        version    UInt64,
        is_deleted UInt8 DEFAULT 0,
        INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = {engine}
    ORDER BY (key, trace_id)""",
    """CREATE TABLE IF NOT EXISTS tag_history{on_cluster} (
        trace_id String,
        key      String,
        value    Nullable(String),
        op       LowCardinality(String),
        at_ms    Int64,
        set_by   Nullable(String),
        op_id    String,
        INDEX idx_op_id op_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = {plain_engine}
    ORDER BY (trace_id, at_ms)""",
    # Feedback that arrives with traces (MLflow assessments, Langfuse scores) is kept, not dropped,
    # though only the DuckDB store reads it back so far.
    """CREATE TABLE IF NOT EXISTS labels{on_cluster} (
        label_id      String,
        trace_id      String,
        criterion     String,
        value         String,
        numeric_value Nullable(Float64),
        reviewer      Nullable(String),
        rationale     Nullable(String) CODEC(ZSTD(3)),
        created_at_ms Int64,
        source        Nullable(String),
        version       UInt64,
        is_deleted    UInt8 DEFAULT 0
    ) ENGINE = {engine}
    ORDER BY (trace_id, label_id)""",
    """CREATE TABLE IF NOT EXISTS scores{on_cluster} (
        run_id        String,
        judge         String,
        trace_id      String,
        verdict       LowCardinality(String),
        score         Nullable(Float64),
        value         Nullable(String),
        rationale     Nullable(String) CODEC(ZSTD(3)),
        created_at_ms Nullable(Int64),
        version       UInt64,
        is_deleted    UInt8 DEFAULT 0
    ) ENGINE = {engine}
    ORDER BY (trace_id, run_id, judge)""",
)

#: Which migrations a database has had; created before any migration runs.
BOOKKEEPING = """CREATE TABLE IF NOT EXISTS schema_migrations{on_cluster} (
        version       UInt32,
        applied_at_ms Int64
    ) ENGINE = {plain_engine}
    ORDER BY version"""

#: The views ``query_sql`` offers under the DuckDB store's names, de-duplicated inside.
M002_VIEWS: tuple[str, ...] = (
    """CREATE VIEW IF NOT EXISTS trace_unified{on_cluster} AS
    SELECT t.trace_id, fromUnixTimestamp64Milli(t.timestamp_ms) AS request_time, t.timestamp_ms,
        t.status AS state, t.status, t.execution_time_ms AS execution_duration_ms, t.execution_time_ms, t.name,
        t.request, t.response, leftUTF8(t.request, 1000) AS request_preview,
        leftUTF8(t.response, 1000) AS response_preview, t.session_id, t.user_id, t.model, t.prompt_version,
        t.environment, t.input_tokens, t.output_tokens,
        coalesce(t.input_tokens, 0) + coalesce(t.output_tokens, 0) AS total_tokens, t.metadata AS trace_metadata,
        g.tags AS tags, t.span_count, t.error_count, t.tool_names, t.source
    FROM traces AS t FINAL
    LEFT JOIN (SELECT trace_id, mapFromArrays(groupArray(key), groupArray(value)) AS tags
               FROM tags FINAL GROUP BY trace_id) AS g ON g.trace_id = t.trace_id""",
    """CREATE VIEW IF NOT EXISTS otel_spans{on_cluster} AS
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.span_type,
        fromUnixTimestamp64Nano(s.start_time_ns) AS start_time, fromUnixTimestamp64Nano(s.end_time_ns) AS end_time,
        s.start_time_ns AS start_time_unix_nano, s.end_time_ns AS end_time_unix_nano,
        (s.end_time_ns - s.start_time_ns) / 1e6 AS duration_ms, s.status AS status_code, s.status_message,
        s.inputs, s.outputs, s.model, s.input_tokens, s.output_tokens, s.tool_name, s.attributes, s.events
    FROM spans AS s FINAL""",
)

#: The big, append-mostly feature rows, beside the traces they describe (the small transactional
#: state is in the control plane, ``server.storage.control``). Columns and meanings are the DuckDB
#: tables' (m001-m003); each key makes a retried insert idempotent:
#: * ``labels`` by ``label_id``. Labels stay append-only: a correction is a new row, and the current
#:   label of (trace, criterion) is the newest (``argMax`` / ``LIMIT 1 BY``), as DuckDB's view.
#: * ``scores`` by (run, judge, trace, record); ``record_id`` is '' for a trace-targeted run.
#: * ``dataset_records`` by (name, version, records_batch, record_id); a version's records are
#:   visible only once its header commits in the control plane, after they are written, naming
#:   their batch. The batch is in the key so that two writers racing for one version number write
#:   two batches, which ReplacingMergeTree never folds into one (see ``datasets_store``).
M003_FEATURE_ROWS: tuple[str | Guarded, ...] = (
    # M001 created labels and scores with other keys, so CREATE IF NOT EXISTS alone kept the old
    # tables; they are renamed aside (the rows ingestion wrote stay readable there) and re-created.
    # One rename per table, each skipped once done: a migration re-run after a crash between them
    # must neither fail on the first nor leave the second table under its old keys.
    Guarded("RENAME TABLE labels TO labels_m001{on_cluster}", unless_table="labels_m001"),
    Guarded("RENAME TABLE scores TO scores_m001{on_cluster}", unless_table="scores_m001"),
    """CREATE TABLE IF NOT EXISTS labels{on_cluster} (
        label_id      String,
        trace_id      String,
        criterion     String,
        value         String,
        numeric_value Nullable(Float64),
        reviewer      Nullable(String),
        rationale     Nullable(String) CODEC(ZSTD(3)),
        created_at_ms Int64,
        source        Nullable(String),
        version       UInt64,
        is_deleted    UInt8 DEFAULT 0,
        INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = {engine}
    ORDER BY (criterion, trace_id, label_id)""",
    """CREATE TABLE IF NOT EXISTS scores{on_cluster} (
        run_id        String,
        judge         String,
        trace_id      String,
        record_id     String DEFAULT '',
        verdict       LowCardinality(String),
        score         Nullable(Float64),
        value         Nullable(String),
        rationale     Nullable(String) CODEC(ZSTD(3)),
        created_at_ms Nullable(Int64),
        judge_version Nullable(String),
        latency_ms    Nullable(Float64),
        input_tokens  Nullable(Int64),
        output_tokens Nullable(Int64),
        cost_usd      Nullable(Float64),
        error         Nullable(String),
        cache_key     Nullable(String),
        cached        UInt8 DEFAULT 0,
        version       UInt64,
        is_deleted    UInt8 DEFAULT 0,
        INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX idx_judge judge TYPE set(256) GRANULARITY 4
    ) ENGINE = {engine}
    ORDER BY (run_id, judge, trace_id, record_id)""",
    """CREATE TABLE IF NOT EXISTS dataset_records{on_cluster} (
        name                  String,
        version               Int32,
        records_batch         String,
        record_id             String,
        trace_id              Nullable(String),
        inputs                Nullable(String) CODEC(ZSTD(3)),
        outputs               Nullable(String) CODEC(ZSTD(3)),
        expectations          Nullable(String) CODEC(ZSTD(3)),
        strata                Nullable(String),
        selection_probability Nullable(Float64),
        redaction             Nullable(String),
        position              Int32,
        row_version           UInt64,
        is_deleted            UInt8 DEFAULT 0
    ) ENGINE = {records_engine}
    ORDER BY (name, version, records_batch, record_id)""",
    # The rows ingestion wrote under M001's keys, copied into the new tables (the old ones stay as
    # they were: a copy, never a move, so a failure here loses nothing).
    """INSERT INTO labels (label_id, trace_id, criterion, value, numeric_value, reviewer, rationale, created_at_ms,
        source, version, is_deleted)
    SELECT label_id, trace_id, criterion, value, numeric_value, reviewer, rationale, created_at_ms, source, version,
        is_deleted FROM labels_m001 FINAL""",
    """INSERT INTO scores (run_id, judge, trace_id, verdict, score, value, rationale, created_at_ms, version,
        is_deleted)
    SELECT run_id, judge, trace_id, verdict, score, value, rationale, created_at_ms, version, is_deleted
    FROM scores_m001 FINAL""",
)

MIGRATIONS: tuple[tuple[str | Guarded, ...], ...] = (M001_CORE, M002_VIEWS, M003_FEATURE_ROWS)
SCHEMA_VERSION = len(MIGRATIONS)


def statements(version: int, *, cluster: str | None = None) -> list[str | Guarded]:
    """Migration ``version``'s steps (0: the bookkeeping table), for one node or for ``cluster``
    (replicated tables)."""
    if cluster is None:
        fill = {"on_cluster": "", "engine": "ReplacingMergeTree(version, is_deleted)", "plain_engine": "MergeTree",
                "records_engine": "ReplacingMergeTree(row_version, is_deleted)"}
    else:
        path = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
        fill = {"on_cluster": f" ON CLUSTER {cluster}",
                "engine": f"ReplicatedReplacingMergeTree({path}, version, is_deleted)",
                "plain_engine": f"ReplicatedMergeTree({path})",
                "records_engine": f"ReplicatedReplacingMergeTree({path}, row_version, is_deleted)"}

    def filled(sql: str) -> str:
        for name, value in fill.items():
            sql = sql.replace("{" + name + "}", value)
        return sql

    steps = MIGRATIONS[version - 1] if version else (BOOKKEEPING,)
    return [Guarded(filled(s.sql), s.unless_table) if isinstance(s, Guarded) else filled(s) for s in steps]
