"""Annotate: human ground truth and the queue that says what to label next.

``labelling`` (append-only labels, corrections that supersede, imports) and
``annotation_queue`` (anomaly-ranked with a random share); ``review`` and ``review_view`` are the
rules and the redacted trace view of the ``/label`` page. Needs ``labelling.LabelStore`` and
``annotation_queue.QueueStore``.
"""
