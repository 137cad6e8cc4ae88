"""Agreement statistics between a judge and human labels: pure functions over numpy arrays.

Conventions (stated once, used everywhere):

* **positive = fail.** A judge is a failure detector, so a true positive is a trace both the
  judge and the human call ``fail``; TPR is the share of human-labelled failures the judge
  catches, TNR the share of human passes it lets through.
* Point estimates come from scikit-learn (``confusion_matrix``, ``matthews_corrcoef``,
  ``cohen_kappa_score``, ``precision_recall_fscore_support``); rank correlations from scipy.
* A metric that is undefined on the data (TPR with no human failures, MCC when either side is
  constant) is ``None``, not scikit-learn's conventional 0, so a report never shows a
  made-up number. Inside a bootstrap, undefined MCC/kappa replicates count as 0 (no
  information) and undefined rates are dropped.
* The bootstrap resamples labelled pairs with replacement. A pair's only contribution is its
  confusion-matrix cell (and weight), so a resample is exactly a multinomial draw over the
  distinct (cell, weight) kinds: the same distribution as index resampling, at O(B) instead of
  O(B·n). That is what makes 2000 resamples of 10k labels take milliseconds.

scipy and scikit-learn are imported inside the functions that use them: together they take
seconds to import, and every CLI command and server start would otherwise pay for it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from statistics import NormalDist

import numpy as np

#: Column order of a cells array: true positive, false positive, false negative, true negative.
CELLS = ("tp", "fp", "fn", "tn")
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20_240_601
METRICS = ("tpr", "tnr", "precision", "recall", "f1", "accuracy", "mcc", "kappa")


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


def as_fail(values: list[str] | np.ndarray) -> np.ndarray:
    """``'fail'`` → 1 (positive), anything else (``'pass'``) → 0."""
    return (np.asarray(values, dtype=object) == "fail").astype(np.int8)


def cells_of(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``[tp, fp, fn, tn]`` (weighted if ``weights``) via scikit-learn's confusion matrix."""
    if len(y_true) == 0:
        return np.zeros(4)
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=[1, 0], sample_weight=weights)
    (tp, fn), (fp, tn) = cm  # rows: truth 1, 0; columns: prediction 1, 0
    return np.array([tp, fp, fn, tn], dtype=float)


def fast_cells(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``[tp, fp, fn, tn]`` by counting (no scikit-learn input validation); for many small groups."""
    codes = np.where(y_true == 1, np.where(y_pred == 1, 0, 2), np.where(y_pred == 1, 1, 3))
    return np.bincount(codes, minlength=4).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def metrics_from_cells(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric from ``cells`` of shape (..., 4); vectorised for bootstrap replicates.

    Undefined values are NaN. ``test_stats`` checks these formulas against scikit-learn.
    """
    tp, fp, fn, tn = (cells[..., i].astype(float) for i in range(4))
    n = tp + fp + fn + tn
    tpr, tnr, precision = _ratio(tp, tp + fn), _ratio(tn, tn + fp), _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    accuracy = _ratio(tp + tn, n)
    mcc = _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    p_o = accuracy
    p_e = _ratio((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), n * n)
    kappa = _ratio(p_o - p_e, 1 - p_e)
    return {"tpr": tpr, "tnr": tnr, "precision": precision, "recall": tpr, "f1": f1, "accuracy": accuracy,
            "mcc": mcc, "kappa": kappa}


def finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def point_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """The point estimates, computed by scikit-learn; ``None`` where the metric is undefined."""
    cells = cells_of(y_true, y_pred)
    by_counts = {k: finite_or_none(float(v)) for k, v in metrics_from_cells(cells).items()}
    if len(y_true) == 0:
        return {k: None for k in METRICS}
    from sklearn.metrics import cohen_kappa_score, matthews_corrcoef, precision_recall_fscore_support

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division / single-label warnings: handled via `by_counts`
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=[1, 0], zero_division=np.nan)
        mcc = matthews_corrcoef(y_true, y_pred)
        kappa = cohen_kappa_score(y_true, y_pred, labels=[1, 0])
    out = {
        "tpr": finite_or_none(recall[0]), "tnr": finite_or_none(recall[1]), "precision": finite_or_none(precision[0]),
        "recall": finite_or_none(recall[0]), "f1": finite_or_none(f1[0]),
        "accuracy": float(np.mean(y_true == y_pred)), "mcc": float(mcc), "kappa": finite_or_none(kappa),
    }
    # scikit-learn reports 0 for an undefined MCC and F1 when nothing is positive; say "undefined".
    for key in ("mcc", "f1", "kappa"):
        if by_counts[key] is None:
            out[key] = None
    return out


def bootstrap_cells(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None, *, resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(resamples, 4) weighted cell totals of pair resamples, drawn as multinomials over pair kinds."""
    n = len(y_true)
    if n == 0 or resamples <= 0:
        return np.zeros((0, 4))
    cell = np.where(y_true == 1, np.where(y_pred == 1, 0, 2), np.where(y_pred == 1, 1, 3))
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    kinds, inverse, counts = np.unique(np.stack([cell, w]), axis=1, return_inverse=True, return_counts=True)
    to_cells = np.zeros((kinds.shape[1], 4))
    to_cells[np.arange(kinds.shape[1]), kinds[0].astype(int)] = kinds[1]
    out = np.empty((resamples, 4))
    chunk = max(1, 4_000_000 // kinds.shape[1])  # bound the (chunk, kinds) draw matrix to ~32 MB
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        out[start:start + size] = rng.multinomial(n, counts / n, size=size) @ to_cells
    return out


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> Interval:
    """Percentile bootstrap interval; ``None`` bounds if fewer than 10 replicates are defined."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 10:
        return Interval(None, None)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(float(low), float(high))


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, *, weights: np.ndarray | None = None,
                        resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                        confidence: float = 0.95) -> dict[str, Interval]:
    """Percentile bootstrap intervals for every metric in ``METRICS``."""
    rng = np.random.default_rng(seed)
    reps = metrics_from_cells(bootstrap_cells(y_true, y_pred, weights, resamples=resamples, rng=rng))
    out = {}
    for name, values in reps.items():
        if name in ("mcc", "kappa"):  # an all-one-class resample carries no agreement information
            values = np.nan_to_num(values, nan=0.0)
        out[name] = percentile_interval(values, confidence)
    return out


@dataclass(frozen=True)
class RankCorrelation:
    statistic: float | None
    p_value: float | None
    interval: Interval


def _fisher_interval(r: float, se: float, confidence: float) -> Interval:
    z = math.atanh(max(-0.999999, min(0.999999, r)))
    q = NormalDist().inv_cdf(0.5 + confidence / 2)
    return Interval(math.tanh(z - q * se), math.tanh(z + q * se))


def rank_correlations(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> dict[str, RankCorrelation]:
    """Spearman rho and Kendall tau-b (scipy) with Fisher-z intervals.

    Intervals: Bonett & Wright (2000) SE sqrt((1 + rho²/2)/(n − 3)) for Spearman, Fieller's
    sqrt(0.437/(n − 4)) for Kendall; analytic, because an index bootstrap of Kendall's tau at
    10k pairs would cost seconds for little gain.
    """
    n = len(x)
    empty = RankCorrelation(None, None, Interval(None, None))
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman": empty, "kendall": empty}
    from scipy import stats as sps

    rho, p_rho = sps.spearmanr(x, y)
    tau, p_tau = sps.kendalltau(x, y)
    out = {}
    for name, r, p, se in (("spearman", rho, p_rho, math.sqrt((1 + rho ** 2 / 2) / (n - 3)) if n > 3 else None),
                           ("kendall", tau, p_tau, math.sqrt(0.437 / (n - 4)) if n > 4 else None)):
        interval = _fisher_interval(float(r), se, confidence) if se is not None else Interval(None, None)
        out[name] = RankCorrelation(finite_or_none(float(r)), finite_or_none(float(p)), interval)
    return out


def labels_to_half_width(n: int, half_width: float | None, target: float = 0.1) -> int | None:
    """More labels needed for the MCC interval to shrink to ±``target``, assuming width ∝ 1/√n."""
    if half_width is None or n <= 0:
        return None
    if half_width <= target:
        return 0
    return int(math.ceil(n * (half_width / target) ** 2 - n))


def rogan_gladen(fail_rate: float | np.ndarray, tpr: float | np.ndarray,
                 tnr: float | np.ndarray) -> float | np.ndarray:
    """True failure prevalence from an observed judge fail rate, clipped to [0, 1].

    Rogan & Gladen (1978): prevalence = (q + specificity − 1) / (sensitivity + specificity − 1),
    with sensitivity = TPR and specificity = TNR. NaN where the judge is no better than chance
    (Youden's J = TPR + TNR − 1 ≤ 0): then the observed rate says nothing about the truth.
    """
    q, se, sp = (np.asarray(v, dtype=float) for v in (fail_rate, tpr, tnr))
    j = se + sp - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(j > 0, (q + sp - 1) / np.where(j > 0, j, 1), np.nan)
    est = np.clip(est, 0.0, 1.0)
    return float(est) if est.ndim == 0 else est


def corrected_pass_rate(n_items: int, n_fail: int, y_true: np.ndarray, y_pred: np.ndarray,
                        weights: np.ndarray | None = None, *, resamples: int = DEFAULT_RESAMPLES,
                        seed: int = DEFAULT_SEED, confidence: float = 0.95) -> tuple[float | None, Interval]:
    """Judge-bias-corrected pass rate of a run, with a bootstrap interval.

    The run's fail count is resampled binomially and the calibration pairs by multinomial
    (weighted by 1/selection probability when given); both sources of error reach the interval.
    """
    if n_items == 0 or len(y_true) == 0:
        return None, Interval(None, None)
    cells = cells_of(y_true, y_pred, weights)
    m = metrics_from_cells(cells)
    point = rogan_gladen(n_fail / n_items, m["tpr"], m["tnr"])
    rng = np.random.default_rng(seed)
    boot = metrics_from_cells(bootstrap_cells(y_true, y_pred, weights, resamples=resamples, rng=rng))
    q = rng.binomial(n_items, n_fail / n_items, size=resamples) / n_items
    reps = 1 - rogan_gladen(q, boot["tpr"], boot["tnr"])
    value = None if not np.isfinite(point) else 1 - float(point)
    return value, percentile_interval(np.asarray(reps), confidence) if value is not None else Interval(None, None)
