"""Migration 3: judge versions, judge runs, the judge-call cache, and per-item run details on scores.

``scores`` keeps its m001 columns (run_id, judge, trace_id, verdict, score, value, rationale,
created_at_ms) so filters like ``scores.<judge> = 'fail'`` and imported scores keep working; a
run adds the judge version, the dataset record, latency, tokens, cost, error and cache key.
``judge_cache`` answers identical (judge version, prompt, model) calls without a model call.
"""

SQL = """
    CREATE TABLE judges (
        name          VARCHAR NOT NULL,
        version       VARCHAR NOT NULL,   -- content hash of criterion + spec
        seq           INTEGER NOT NULL,   -- 1, 2, ... per name
        kind          VARCHAR NOT NULL,   -- 'rule' | 'llm' | 'classifier'
        criterion     VARCHAR NOT NULL,
        spec          JSON    NOT NULL,
        description   VARCHAR,
        created_at_ms BIGINT  NOT NULL
    );
    CREATE TABLE judge_runs (
        run_id         VARCHAR NOT NULL,
        target         JSON    NOT NULL,  -- dataset name@version, or filter + window + now + sampling
        target_label   VARCHAR NOT NULL,
        judges         JSON    NOT NULL,  -- ["name@version-hash", ...]
        model          VARCHAR,
        status         VARCHAR NOT NULL,  -- 'running' | 'completed' | 'failed' | 'interrupted'
        started_at_ms  BIGINT  NOT NULL,
        finished_at_ms BIGINT,
        heartbeat_ms   BIGINT,
        items_total    BIGINT  NOT NULL,
        stats          JSON,
        error          VARCHAR
    );
    CREATE TABLE judge_cache (
        cache_key     VARCHAR NOT NULL,   -- sha256(judge version, model, prompt hash)
        judge_version VARCHAR NOT NULL,
        model         VARCHAR NOT NULL,
        verdict       VARCHAR NOT NULL,
        score         DOUBLE,
        rationale     VARCHAR,
        input_tokens  BIGINT,
        output_tokens BIGINT,
        cost_usd      DOUBLE,
        created_at_ms BIGINT NOT NULL
    );
    ALTER TABLE scores ADD COLUMN judge_version VARCHAR;
    ALTER TABLE scores ADD COLUMN record_id VARCHAR;
    ALTER TABLE scores ADD COLUMN latency_ms DOUBLE;
    ALTER TABLE scores ADD COLUMN input_tokens BIGINT;
    ALTER TABLE scores ADD COLUMN output_tokens BIGINT;
    ALTER TABLE scores ADD COLUMN cost_usd DOUBLE;
    ALTER TABLE scores ADD COLUMN error VARCHAR;
    ALTER TABLE scores ADD COLUMN cache_key VARCHAR;
    ALTER TABLE scores ADD COLUMN cached BOOLEAN DEFAULT FALSE;
    """
