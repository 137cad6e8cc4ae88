"""The control plane: the small, transactional state beside a ClickHouse trace store.

Dataset version headers, judges and their versions, judge runs, the judge-call cache, the
annotation queue, reviewers, calibration snapshots, monitors and sync state are few rows that
must change atomically (a version allocated once, a window claimed once). ClickHouse has no
transactions, so they live here: SQLAlchemy Core over PostgreSQL for a shared deployment, or a
SQLite file beside a chdb folder so a laptop needs no server. The big, append-mostly feature
rows (labels, scores, dataset records) stay in ClickHouse beside the traces they describe.
A DuckDB store needs none of this: its one file holds every table in one transaction.
"""
