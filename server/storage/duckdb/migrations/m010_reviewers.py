"""Migration 10 (labelling page): reviewers with hashed tokens, skips, proposed criteria, PII reveals.

* ``reviewers``: who may use ``/label``. Only a SHA-256 of each token is kept (tokens are 256
  random bits, so a fast hash is enough; nothing to brute-force), and a revoked reviewer keeps
  the row so their labels stay attributed to a known name.
* ``review_skips``: "skip" on the page is not a label; it only keeps the trace out of that
  reviewer's way for the criterion.
* ``criteria``: failure modes proposed from the page (or by an operator), with a description
  and a scale, so the queue, the page and ``define_judge`` share one name.
* ``reveal_log``: every time a lead showed a field without redaction: who, which trace and field, when.
"""

SQL = """
    CREATE TABLE reviewers (
        name          VARCHAR NOT NULL,
        role          VARCHAR NOT NULL,   -- 'reviewer' | 'lead'
        token_sha256  VARCHAR NOT NULL,
        created_at_ms BIGINT  NOT NULL,
        revoked_at_ms BIGINT
    );
    CREATE TABLE review_skips (
        reviewer      VARCHAR NOT NULL,
        trace_id      VARCHAR NOT NULL,
        criterion     VARCHAR NOT NULL,
        created_at_ms BIGINT  NOT NULL
    );
    CREATE TABLE criteria (
        name          VARCHAR NOT NULL,
        description   VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,   -- 'binary' | 'graded'
        scale_min     DOUBLE,
        scale_max     DOUBLE,
        proposed_by   VARCHAR NOT NULL,
        created_at_ms BIGINT  NOT NULL
    );
    CREATE TABLE reveal_log (
        reviewer      VARCHAR NOT NULL,
        trace_id      VARCHAR NOT NULL,
        field         VARCHAR NOT NULL,
        created_at_ms BIGINT  NOT NULL
    );
    """
