"""Every statistic against scikit-learn / scipy (or a hand computation) on known data, with edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import (accuracy_score, cohen_kappa_score, f1_score, matthews_corrcoef, precision_score,
                             recall_score)

from tools.calibration import stats
from tools.calibration import stats_paired as sp

# tp=3 fn=1 fp=1 tn=5 (positive = 1 = fail)
Y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0])
P = np.array([1, 0, 0, 0, 1, 1, 0, 0, 1, 0])


def sklearn_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    kw = {"zero_division": np.nan}
    return {"tpr": recall_score(y, p, pos_label=1, **kw), "tnr": recall_score(y, p, pos_label=0, **kw),
            "precision": precision_score(y, p, pos_label=1, **kw), "f1": f1_score(y, p, pos_label=1, **kw),
            "accuracy": accuracy_score(y, p), "mcc": matthews_corrcoef(y, p),
            "kappa": cohen_kappa_score(y, p, labels=[1, 0])}


def test_known_confusion_matrix_matches_hand_and_sklearn() -> None:
    assert stats.cells_of(Y, P).tolist() == [3, 1, 1, 5]
    point = stats.point_metrics(Y, P)
    assert point == pytest.approx({"tpr": 0.75, "tnr": 5 / 6, "precision": 0.75, "recall": 0.75, "f1": 0.75,
                                   "accuracy": 0.8, "mcc": 7 / 12, "kappa": 7 / 12})
    for name, value in sklearn_metrics(Y, P).items():
        assert point[name] == pytest.approx(value), name


@pytest.mark.parametrize("seed,n", [(0, 7), (1, 30), (2, 200), (3, 5), (4, 1000)])
def test_vectorised_count_formulas_equal_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.8, y, 1 - y)
    by_counts = stats.metrics_from_cells(stats.cells_of(y, p))
    assert stats.fast_cells(y, p).tolist() == stats.cells_of(y, p).tolist()
    for name, value in sklearn_metrics(y, p).items():
        if math.isnan(value):
            assert math.isnan(by_counts[name]), name
        else:
            assert float(by_counts[name]) == pytest.approx(value), name


def test_weighted_cells_match_sklearn_sample_weight() -> None:
    w = np.array([1, 2, 3, 1, 1, 4, 1, 1, 2, 1], dtype=float)
    cells = stats.cells_of(Y, P, w)
    assert cells.tolist() == [1 + 1 + 2, 4, 2, 3 + 1 + 1 + 1 + 1]  # tp at 0,4,8; fp at 5; fn at 1
    mcc = stats.metrics_from_cells(cells)["mcc"]
    assert float(mcc) == pytest.approx(matthews_corrcoef(Y, P, sample_weight=w))


def test_all_one_class_truth_leaves_mcc_and_tpr_undefined_where_sklearn_says_zero() -> None:
    y = np.zeros(6, dtype=int)
    p = np.array([0, 0, 1, 0, 0, 0])
    point = stats.point_metrics(y, p)
    assert matthews_corrcoef(y, p) == 0.0  # scikit-learn's convention for "undefined"
    assert point["mcc"] is None and point["tpr"] is None and point["recall"] is None
    assert point["tnr"] == pytest.approx(5 / 6) and point["precision"] == 0.0
    assert point["kappa"] == pytest.approx(cohen_kappa_score(y, p)) == 0.0


def test_all_pass_on_both_sides_has_no_agreement_statistic() -> None:
    y = p = np.zeros(8, dtype=int)
    point = stats.point_metrics(y, p)
    assert point["accuracy"] == 1.0 and point["tnr"] == 1.0
    assert point["mcc"] is None and point["kappa"] is None and point["f1"] is None
    with pytest.warns(UserWarning):
        assert math.isnan(cohen_kappa_score(y, p, labels=[1, 0]))


def test_no_disagreement_is_perfect_with_a_tight_interval() -> None:
    y = np.array([1, 0] * 15)
    point = stats.point_metrics(y, y)
    assert point["mcc"] == 1.0 and point["kappa"] == 1.0 and point["f1"] == 1.0
    ci = stats.bootstrap_intervals(y, y, resamples=500, seed=1)
    assert ci["mcc"].high == 1.0 and ci["accuracy"].low == ci["accuracy"].high == 1.0


def test_tiny_samples_and_empty_input() -> None:
    y, p = np.array([1, 0, 1]), np.array([1, 0, 0])
    assert stats.point_metrics(y, p)["mcc"] == pytest.approx(matthews_corrcoef(y, p))
    ci = stats.bootstrap_intervals(y, p, resamples=300, seed=3)
    assert -1 <= ci["mcc"].low <= ci["mcc"].high <= 1
    assert stats.point_metrics(np.array([], dtype=int), np.array([], dtype=int))["mcc"] is None
    assert stats.bootstrap_cells(np.array([]), np.array([]), None, resamples=10,
                                 rng=np.random.default_rng(0)).shape == (0, 4)


def test_multinomial_bootstrap_matches_scipy_index_bootstrap() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 80)
    p = np.where(rng.random(80) < 0.75, y, 1 - y)

    def mcc(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        tp, tn = ((a == 1) & (b == 1)).sum(axis), ((a == 0) & (b == 0)).sum(axis)
        fp, fn = ((a == 0) & (b == 1)).sum(axis), ((a == 1) & (b == 0)).sum(axis)
        return (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))

    ref = sps.bootstrap((y, p), mcc, paired=True, vectorized=True, n_resamples=4000, method="percentile",
                        random_state=1).confidence_interval
    ours = stats.bootstrap_intervals(y, p, resamples=4000, seed=2)["mcc"]
    assert ours.low == pytest.approx(ref.low, abs=0.05) and ours.high == pytest.approx(ref.high, abs=0.05)
    again = stats.bootstrap_intervals(y, p, resamples=4000, seed=2)["mcc"]
    assert again == ours  # seeded: same seed, same interval


def test_rank_correlations_match_scipy_including_ties() -> None:
    x = np.array([0.1, 0.4, 0.4, 0.8, 0.9, 0.2, 0.7, 0.7])
    y = np.array([0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    out = stats.rank_correlations(x, y)
    rho, p_rho = sps.spearmanr(x, y)
    tau, p_tau = sps.kendalltau(x, y)
    assert out["spearman"].statistic == pytest.approx(rho) and out["spearman"].p_value == pytest.approx(p_rho)
    assert out["kendall"].statistic == pytest.approx(tau) and out["kendall"].p_value == pytest.approx(p_tau)
    se = math.sqrt((1 + rho ** 2 / 2) / (len(x) - 3))
    assert out["spearman"].interval.low == pytest.approx(math.tanh(math.atanh(rho) - 1.959964 * se), abs=1e-5)
    assert stats.rank_correlations(x, np.ones(8))["spearman"].statistic is None  # constant: undefined


def test_rogan_gladen_by_hand() -> None:
    assert stats.rogan_gladen(0.3, 0.8, 0.9) == pytest.approx(0.2 / 0.7)
    assert stats.rogan_gladen(0.05, 0.8, 0.9) == 0.0  # clipped at 0
    assert math.isnan(stats.rogan_gladen(0.3, 0.5, 0.5))  # no better than chance


def test_corrected_pass_rate_of_a_perfect_judge_is_the_observed_rate() -> None:
    y = np.array([1] * 10 + [0] * 30)
    value, ci = stats.corrected_pass_rate(200, 50, y, y, resamples=500, seed=1)
    assert value == pytest.approx(0.75)
    assert ci.low <= 0.75 <= ci.high


def test_corrected_pass_rate_undoes_known_judge_bias() -> None:
    # judge: TPR 0.8, TNR 0.9; true fail rate 0.2 -> observed fail rate 0.2*0.8 + 0.8*0.1 = 0.24
    y = np.array([1] * 10 + [0] * 20)
    p = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 18)
    value, _ = stats.corrected_pass_rate(1000, 240, y, p, resamples=200, seed=1)
    assert value == pytest.approx(0.8)
    w = np.array([1.0] * 10 + [2.0] * 20)  # reweighting the passes leaves TNR unchanged here
    assert stats.corrected_pass_rate(1000, 240, y, p, w, resamples=200, seed=1)[0] == pytest.approx(0.8)


def test_labels_needed_for_a_narrower_mcc_interval() -> None:
    assert stats.labels_to_half_width(40, 0.3) == 320   # 40 * (0.3/0.1)^2 - 40
    assert stats.labels_to_half_width(40, 0.08) == 0
    assert stats.labels_to_half_width(40, None) is None


def test_exact_mcnemar_by_hand_and_against_binomtest() -> None:
    assert sp.mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert sp.mcnemar_exact(12, 2) == pytest.approx(sps.binomtest(12, 14, 0.5).pvalue)
    assert sp.mcnemar_exact(0, 0) == 1.0
    assert sp.mcnemar_exact(5, 5) == 1.0


def test_paired_delta_interval() -> None:
    ci = sp.paired_delta_interval(40, 12, 2, 6, resamples=2000, seed=1)
    assert ci.low < -10 / 60 < ci.high < 0
    assert sp.paired_delta_interval(30, 0, 0, 10, resamples=200).low == 0.0  # nothing flipped


def test_fisher_and_unpaired_interval() -> None:
    assert sp.fisher_exact(90, 10, 70, 30) == pytest.approx(sps.fisher_exact([[90, 10], [70, 30]]).pvalue)
    ci = sp.unpaired_delta_interval(90, 100, 70, 100, resamples=2000, seed=1)
    assert ci.low < -0.2 < ci.high < 0


def test_holm_step_down_by_hand() -> None:
    assert sp.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert sp.holm([0.5, 0.6]) == [1.0, 1.0]
    assert sp.holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])
    assert sp.holm([]) == []
