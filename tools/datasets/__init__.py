"""Curate: versioned, PII-redacted eval datasets built from tagged traces.

``builder`` (build_dataset_from_tags), ``selection`` (which traces), ``sampling`` (seeded,
stratified, with selection probabilities), ``versions`` (name@version), ``merge`` (new versions
from edits). Needs ``models.DatasetStore``.
"""
