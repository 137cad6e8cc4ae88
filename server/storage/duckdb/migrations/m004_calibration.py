"""Migration (calibration feature): the annotation queue's draws, persisted calibrations, current labels.

* ``queue_items`` keeps every item ``annotation_queue`` handed out with its selection
  probability, so labels drawn from the anomaly-ranked queue can later be reweighted by
  1/probability for unbiased population estimates.
* ``calibrations`` keeps each ``calibration_report`` verdict, so ``compare_runs`` and the CI gate
  know which judges are calibrated well enough to gate (the latest row per judge counts).
* ``current_labels`` is the latest label per (trace, criterion): labels are append-only and a
  correction is a newer row; older rows stay as history in ``labels``.
"""

SQL = """
    CREATE TABLE queue_items (
        queue_id              VARCHAR NOT NULL,
        criterion             VARCHAR NOT NULL,
        trace_id              VARCHAR NOT NULL,
        rank                  INTEGER NOT NULL,
        priority              DOUBLE  NOT NULL,
        selected_by           VARCHAR NOT NULL,  -- 'anomaly' | 'random'
        selection_probability DOUBLE  NOT NULL,
        reasons               JSON,
        population            BIGINT  NOT NULL,  -- unlabelled traces the queue was drawn from
        filter                VARCHAR,
        created_at_ms         BIGINT  NOT NULL
    );
    CREATE TABLE calibrations (
        calibration_id   VARCHAR NOT NULL,
        judge            VARCHAR NOT NULL,
        judge_version    VARCHAR,
        criterion        VARCHAR NOT NULL,
        run_id           VARCHAR,
        n                INTEGER NOT NULL,
        mcc              DOUBLE,
        mcc_low          DOUBLE,
        mcc_high         DOUBLE,
        kappa            DOUBLE,
        verdict          VARCHAR NOT NULL,  -- 'gate' | 'signal' | 'revise' | 'insufficient'
        gate_threshold   DOUBLE NOT NULL,
        signal_threshold DOUBLE NOT NULL,
        computed_at_ms   BIGINT NOT NULL,
        summary          JSON
    );
    CREATE VIEW current_labels AS
    SELECT * EXCLUDE (rn) FROM (
        SELECT l.*, row_number() OVER (PARTITION BY l.trace_id, l.criterion
                                       ORDER BY l.created_at_ms DESC, l.label_id DESC) AS rn
        FROM labels l)
    WHERE rn = 1;
    """
