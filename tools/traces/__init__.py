"""Observe: find, read, tag and describe traces, and read-only SQL over them.

``search`` (filters, keyset pages), ``view`` (get_trace under a character budget), ``tagging``,
``describe`` and ``sql``. Needs ``tools.ports.TraceStore``.
"""
