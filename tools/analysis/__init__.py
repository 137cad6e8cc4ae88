"""Where time, tokens and errors go: profile_traces and error_patterns.

``profiling`` (self time, percentiles, cost) with ``profile_report`` (findings and markdown),
``error_patterns`` (windows compared, failures grouped) and ``common`` (groupings and windows).
Needs ``profiling.ProfileStore`` and ``error_patterns.ErrorStore``, pushed down into SQL.
"""
