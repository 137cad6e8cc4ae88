"""Redaction of personal data before it leaves the trace tables.

``patterns`` (emails, phones, cards, ids, secrets), ``names`` (person names through an optional
NER model) and ``redaction`` (consistent ``<EMAIL_1>``-style placeholders with counts). No port.
"""
