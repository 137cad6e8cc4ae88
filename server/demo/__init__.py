"""Deterministic demo traces of an "Acme Store" support agent with seeded, known failure modes.

The demo gives every tool (search, anomaly queue, datasets, judges, calibration, gates) realistic
data to work on without a model or network, and records the ground truth of each seeded
failure in ``metadata["demo_ground_truth"]`` so demos and tests can label traces "as a human
would" and check judges against it.
"""

from server.demo.generate import (
    DEMO_CRITERIA,
    FAILURE_RATES,
    V13_FAILURE_RATES,
    generate_demo_traces,
    ground_truth,
    ground_truth_labels,
)

__all__ = [
    "DEMO_CRITERIA",
    "FAILURE_RATES",
    "V13_FAILURE_RATES",
    "generate_demo_traces",
    "ground_truth",
    "ground_truth_labels",
]
