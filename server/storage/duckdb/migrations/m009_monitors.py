"""Migration 9 (monitors): monitor versions, the windows they ran, and the alerts they raised.

* ``monitors``: like ``judges``, a changed definition is a new version (content hash + seq); the
  judges inside are pinned to versions, so a monitor's numbers never shift under it silently.
* ``monitor_windows``: one row per (monitor version, window end) — the unit of exactly-once.
  A row is claimed ('running') before its judge run starts and finished in the same transaction
  as the window's alerts, so a killed process leaves a row the next run resumes.
* ``monitor_alerts``: stable ids; an alert stays one row while its condition persists
  (``windows_seen`` counts), ``notified_at_ms`` says whether the webhook got it.
"""

SQL = """
    CREATE TABLE monitors (
        name          VARCHAR NOT NULL,
        version       VARCHAR NOT NULL,   -- content hash of the definition (without the start)
        seq           INTEGER NOT NULL,
        spec          JSON    NOT NULL,
        since_ms      BIGINT  NOT NULL,   -- start of the first window
        created_at_ms BIGINT  NOT NULL
    );
    CREATE TABLE monitor_windows (
        monitor         VARCHAR NOT NULL,
        version         VARCHAR NOT NULL,
        start_ms        BIGINT  NOT NULL, -- exclusive
        end_ms          BIGINT  NOT NULL, -- inclusive
        status          VARCHAR NOT NULL, -- 'running' | 'completed' | 'budget_stopped'
        run_id          VARCHAR,
        target          JSON,
        claimed_at_ms   BIGINT  NOT NULL,
        finished_at_ms  BIGINT,
        stats           JSON,
        note            VARCHAR
    );
    CREATE TABLE monitor_alerts (
        alert_id          VARCHAR NOT NULL,
        monitor           VARCHAR NOT NULL,
        version           VARCHAR NOT NULL,
        key               VARCHAR NOT NULL, -- kind + subject: what makes two windows' alerts the same alert
        kind              VARCHAR NOT NULL, -- regression | signal | error_rate | latency_p95 | emerging_pattern
        subject           VARCHAR NOT NULL,
        status            VARCHAR NOT NULL, -- open | acked | resolved
        first_window_end  BIGINT  NOT NULL,
        last_window_end   BIGINT  NOT NULL,
        windows_seen      INTEGER NOT NULL,
        evidence          JSON    NOT NULL,
        summary           VARCHAR NOT NULL,
        created_at_ms     BIGINT  NOT NULL,
        acked_at_ms       BIGINT,
        acked_by          VARCHAR,
        ack_note          VARCHAR,
        resolved_at_ms    BIGINT,
        notified_at_ms    BIGINT
    );
    """
