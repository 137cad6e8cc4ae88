"""Redaction of personal data before it leaves the trace tables.

Detectors built on the field's libraries: ``secrets`` / ``gitleaks`` (gitleaks' rules, vendored in
``data/``), ``phones`` (libphonenumber across regions), ``national_ids`` (Presidio's country
recognizers), ``addresses`` (pyap plus ``street_forms``), ``names`` / ``name_cues`` (spaCy NER),
``patterns`` (emails, cards, IPs); ``redaction`` replaces every occurrence of a found value with one
consistent placeholder and counts by type; ``outputs`` and ``switches`` apply it where data leaves
(judge inputs, the queue, exports, reads). No port.
"""
