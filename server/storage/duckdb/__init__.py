"""The embedded DuckDB store: the reference implementation of every port in ``tools``.

``store`` (connection handling and the trace port), ``writer`` (ingest batches), ``filter_sql``
(the filter AST as parameterised SQL), one ``*_sql`` adapter per family, and ``migrations``.
"""
