"""Does a judge agree with people, and did a release regress? The statistics.

``agreement`` (calibration_report: MCC, kappa, bootstrap intervals, verdicts), ``regression``
(compare_runs: paired McNemar, Holm), ``stats`` / ``stats_paired`` (the primitives) and
``render`` (markdown). Needs ``agreement.CalibrationStore`` and ``regression.RegressionStore``.
"""
