"""The calibration verdict: may this judge gate releases, on the evidence of this sample?

The seed's rule reads the MCC point estimate: ≥ 0.6 **gate**, 0.4–0.6 **signal**, < 0.4
**revise**. On its own it claims more than small samples hold (the audit saw "gate" for a window
of a few labels whose MCC interval was [0.00, 1.00]), so a verdict also needs ``min_labels``
pairs, ``min_per_class`` human labels of each class, and for **gate** an interval that stays
above 0; the interval is written beside every verdict, and ``gate_on='lower_bound'`` judges by the
interval's lower bound instead of the point.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

CalibrationVerdict = Literal["gate", "signal", "revise", "insufficient"]


class Thresholds(BaseModel):
    gate: float
    signal: float
    min_labels: int
    min_per_class: int = 5
    gate_on: Literal["point", "lower_bound"] = "point"


def classify(mcc: float | None, n: int, th: Thresholds, *, one_class_truth: bool, low: float | None = None,
             high: float | None = None, per_class: tuple[int, int] | None = None) -> tuple[CalibrationVerdict, str]:
    """The seed's verdict from MCC, with the reason (and the interval) in words.

    ``per_class`` is (human fails, human passes); ``low``/``high`` the MCC's 95% interval."""
    if n < th.min_labels:
        return "insufficient", (f"only {n} labelled pairs; label at least {th.min_labels} (the seed: 10-20 per "
                                "failure mode) before trusting any verdict")
    if one_class_truth:
        return "insufficient", "the humans used one class only, so agreement is undefined; label both passes and fails"
    if per_class is not None and min(per_class) < th.min_per_class:
        fewer, what = min(zip(per_class, ("failures", "passes")))
        return "insufficient", (f"only {fewer} human-labelled {what}; label at least {th.min_per_class} of each "
                                "class before trusting any verdict")
    value = 0.0 if mcc is None else mcc
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    shown = f"MCC {value:.2f}{interval}"
    if th.gate_on == "lower_bound" and low is not None:
        value, shown = low, f"MCC lower bound {low:.2f} ({shown})"
    if value >= th.gate:
        if low is not None and low <= 0:
            return "insufficient", (f"{shown}: the interval reaches 0, so this sample cannot tell the judge from "
                                    "chance; label more traces (annotation_queue) before gating on it")
        return "gate", f"{shown} ≥ {th.gate:g}: reliable enough to gate releases"
    if value >= th.signal:
        return "signal", f"{shown} in [{th.signal:g}, {th.gate:g}): use as a signal, not a gate"
    why = " (the judge gave one verdict throughout)" if mcc is None else ""
    return "revise", f"{shown} < {th.signal:g}{why}: revise the rubric or prompt"


def per_class_counts(y: np.ndarray) -> tuple[int, int]:
    """(human fails, human passes) of ``stats.as_fail`` labels (1 = fail)."""
    fails = int(y.sum())
    return fails, len(y) - fails
