"""Migration 2: versioned eval datasets (headers) and their records.

A (name, version) row is written once, with all its records, in one transaction, and never
updated: versions are immutable. JSON columns hold the spec (selection, sampling, redaction),
strata counts and redaction report of a version, and each record's inputs/outputs/expectations.
"""

SQL = """
    CREATE TABLE datasets (
        name             VARCHAR NOT NULL,
        version          INTEGER NOT NULL,
        created_at_ms    BIGINT  NOT NULL,
        description      VARCHAR,
        spec             JSON    NOT NULL,
        content_hash     VARCHAR NOT NULL,
        record_count     INTEGER NOT NULL,
        strata           JSON,
        redaction_report JSON,
        parent_version   INTEGER
    );
    CREATE TABLE dataset_records (
        name                  VARCHAR NOT NULL,
        version               INTEGER NOT NULL,
        record_id             VARCHAR NOT NULL,
        trace_id              VARCHAR,
        inputs                JSON,
        outputs               JSON,
        expectations          JSON,
        strata                JSON,
        selection_probability DOUBLE,
        redaction             JSON,
        position              INTEGER NOT NULL
    );
    """
