"""Benchmarks (not tests): tracesieve against MLflow on the same traces, as ratios measured in one run.

Run ``python -m bench.run --quick`` for a smoke run, ``python -m bench.run`` for the real sizes.
"""
