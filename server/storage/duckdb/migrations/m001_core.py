"""Migration 1: traces, spans, tags (+ history), labels, scores and the Databricks-style views."""

SQL = """
    CREATE TABLE traces (
        trace_id          VARCHAR NOT NULL,
        timestamp_ms      BIGINT  NOT NULL,
        execution_time_ms BIGINT,
        status            VARCHAR NOT NULL,
        name              VARCHAR,
        request           VARCHAR,
        response          VARCHAR,
        session_id        VARCHAR,
        user_id           VARCHAR,
        model             VARCHAR,
        prompt_version    VARCHAR,
        environment       VARCHAR,
        input_tokens      BIGINT,
        output_tokens     BIGINT,
        metadata          JSON,
        source            VARCHAR,
        source_id         VARCHAR,
        span_count        INTEGER NOT NULL DEFAULT 0,
        error_count       INTEGER NOT NULL DEFAULT 0,
        tool_names        VARCHAR[],
        ingested_at_ms    BIGINT
    );
    CREATE TABLE spans (
        trace_id        VARCHAR NOT NULL,
        span_id         VARCHAR NOT NULL,
        parent_span_id  VARCHAR,
        name            VARCHAR,
        span_type       VARCHAR NOT NULL,
        start_time_ns   BIGINT NOT NULL,
        end_time_ns     BIGINT NOT NULL,
        status          VARCHAR NOT NULL,
        status_message  VARCHAR,
        inputs          VARCHAR,
        outputs         VARCHAR,
        model           VARCHAR,
        input_tokens    BIGINT,
        output_tokens   BIGINT,
        tool_name       VARCHAR,
        attributes      JSON,
        events          JSON
    );
    CREATE TABLE tags (
        trace_id  VARCHAR NOT NULL,
        key       VARCHAR NOT NULL,
        value     VARCHAR NOT NULL,
        set_at_ms BIGINT NOT NULL,
        set_by    VARCHAR
    );
    CREATE TABLE tag_history (
        trace_id VARCHAR NOT NULL,
        key      VARCHAR NOT NULL,
        value    VARCHAR,
        op       VARCHAR NOT NULL,   -- 'set' | 'delete'
        at_ms    BIGINT NOT NULL,
        set_by   VARCHAR
    );
    CREATE TABLE labels (
        label_id      VARCHAR NOT NULL,
        trace_id      VARCHAR NOT NULL,
        criterion     VARCHAR NOT NULL,
        value         VARCHAR NOT NULL,
        numeric_value DOUBLE,
        reviewer      VARCHAR,
        rationale     VARCHAR,
        created_at_ms BIGINT NOT NULL,
        source        VARCHAR
    );
    CREATE TABLE scores (
        run_id        VARCHAR NOT NULL,
        judge         VARCHAR NOT NULL,
        trace_id      VARCHAR NOT NULL,
        verdict       VARCHAR NOT NULL,  -- 'pass' | 'fail' | 'unknown'
        score         DOUBLE,
        value         VARCHAR,
        rationale     VARCHAR,
        created_at_ms BIGINT
    );
    CREATE VIEW trace_unified AS
    SELECT
        t.trace_id,
        make_timestamp(t.timestamp_ms * 1000)         AS request_time,
        t.timestamp_ms,
        t.status                                      AS state,
        t.status,
        t.execution_time_ms                           AS execution_duration_ms,
        t.execution_time_ms,
        t.name,
        t.request,
        t.response,
        left(t.request, 1000)                         AS request_preview,
        left(t.response, 1000)                        AS response_preview,
        t.session_id,
        t.user_id,
        t.model,
        t.prompt_version,
        t.environment,
        t.input_tokens,
        t.output_tokens,
        coalesce(t.input_tokens, 0) + coalesce(t.output_tokens, 0) AS total_tokens,
        t.metadata                                    AS trace_metadata,
        (SELECT map(list(g.key ORDER BY g.key), list(g.value ORDER BY g.key))
           FROM tags g WHERE g.trace_id = t.trace_id) AS tags,
        t.span_count,
        t.error_count,
        t.tool_names,
        t.source
    FROM traces t;
    CREATE VIEW otel_spans AS
    SELECT
        s.trace_id,
        s.span_id,
        s.parent_span_id,
        s.name,
        s.span_type,
        make_timestamp(s.start_time_ns // 1000)       AS start_time,
        make_timestamp(s.end_time_ns // 1000)         AS end_time,
        s.start_time_ns                               AS start_time_unix_nano,
        s.end_time_ns                                 AS end_time_unix_nano,
        (s.end_time_ns - s.start_time_ns) / 1e6       AS duration_ms,
        s.status                                      AS status_code,
        s.status_message,
        s.inputs,
        s.outputs,
        s.model,
        s.input_tokens,
        s.output_tokens,
        s.tool_name,
        s.attributes,
        s.events
    FROM spans s;
    """
