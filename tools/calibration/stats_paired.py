"""Two-run comparisons: exact McNemar on paired items, Fisher's exact test when items differ,
bootstrap intervals on the pass-rate delta, and Holm's step-down correction across judges.

Paired cells (baseline → candidate): ``pp`` pass→pass, ``pf`` pass→fail (a regression on that
item), ``fp`` fail→pass (an improvement), ``ff`` fail→fail. Only the discordant pairs ``pf`` and
``fp`` carry information about a change; McNemar's exact test is a two-sided binomial test of
``pf`` against ``pf + fp`` at 0.5 (``scipy.stats.binomtest``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tools.calibration.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Interval, percentile_interval


def mcnemar_exact(pf: int, fp: int) -> float:
    """Two-sided exact McNemar p-value; 1.0 when no item changed."""
    if pf + fp == 0:
        return 1.0
    from scipy import stats as sps  # imported on use: scipy.stats takes seconds to import

    return float(sps.binomtest(pf, pf + fp, 0.5, alternative="two-sided").pvalue)


def paired_delta_interval(pp: int, pf: int, fp: int, ff: int, *, resamples: int = DEFAULT_RESAMPLES,
                          seed: int = DEFAULT_SEED, confidence: float = 0.95) -> Interval:
    """Bootstrap interval of candidate − baseline pass rate, resampling paired items.

    A paired resample is a multinomial draw over the four cells, so delta* = (fp* − pf*)/n.
    """
    n = pp + pf + fp + ff
    if n == 0:
        return Interval(None, None)
    draws = np.random.default_rng(seed).multinomial(n, np.array([pp, pf, fp, ff]) / n, size=resamples)
    return percentile_interval((draws[:, 2] - draws[:, 1]) / n, confidence)


def fisher_exact(base_pass: int, base_fail: int, cand_pass: int, cand_fail: int) -> float:
    """Two-sided Fisher exact p-value for two independent pass rates (runs on different items)."""
    if base_pass + base_fail == 0 or cand_pass + cand_fail == 0:
        return 1.0
    from scipy import stats as sps

    return float(sps.fisher_exact([[base_pass, base_fail], [cand_pass, cand_fail]]).pvalue)


def unpaired_delta_interval(base_pass: int, base_n: int, cand_pass: int, cand_n: int, *,
                            resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                            confidence: float = 0.95) -> Interval:
    """Bootstrap interval of candidate − baseline pass rate, resampling each run on its own."""
    if base_n == 0 or cand_n == 0:
        return Interval(None, None)
    rng = np.random.default_rng(seed)
    base = rng.binomial(base_n, base_pass / base_n, size=resamples) / base_n
    cand = rng.binomial(cand_n, cand_pass / cand_n, size=resamples) / cand_n
    return percentile_interval(cand - base, confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, made monotone, capped at 1), input order kept."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
