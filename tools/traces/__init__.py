"""Observe: find, read, tag and describe traces, and read-only SQL over them.

``search`` (filters, keyset pages), ``view`` (get_trace under a character budget, read piece by
piece through ``ports.TraceReader``), ``span_checks`` (cycles, self-parents, impossible times: said,
never hidden), ``tagging``, ``describe`` and ``sql``. Needs ``tools.ports.TraceStore``.
"""
