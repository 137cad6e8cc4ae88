"""Migration 8: ``sync_state``, one row per followed source (``tracesieve sync``).

``watermark_ms`` is the newest trace start time read from the source; the next sync reads from
``watermark_ms - overlap`` so that traces and spans arriving late are not missed (span upserts make
the re-read harmless). ``pushed_at_ms`` is how far tags and labels set here have been written
back to the source (``--push``).
"""

SQL = """
    CREATE TABLE IF NOT EXISTS sync_state (
        source        VARCHAR NOT NULL,
        watermark_ms  BIGINT,
        pushed_at_ms  BIGINT,
        synced_at_ms  BIGINT NOT NULL
    );
"""
