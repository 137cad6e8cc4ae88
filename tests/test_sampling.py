"""Stratified sampling: exact allocations, seeded reproducibility, and usable selection probabilities."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.datasets.sampling import allocate, stratified_sample


def population(sizes: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{stratum}-{i}", stratum) for stratum, n in sizes.items() for i in range(n)]


@pytest.mark.parametrize("sizes, n, expected", [
    ({"a": 50, "b": 30, "c": 20}, 10, {"a": 5, "b": 3, "c": 2}),
    # quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1; the one left goes to the largest remainder (a)
    ({"a": 50, "b": 30, "c": 20}, 7, {"a": 4, "b": 2, "c": 1}),
    ({"a": 1, "b": 1, "c": 98}, 10, {"a": 0, "b": 0, "c": 10}),
    ({"a": 5, "b": 5}, 99, {"a": 5, "b": 5}),
])
def test_proportional_allocation_uses_largest_remainders(sizes: dict, n: int, expected: dict) -> None:
    assert allocate(sizes, n, "proportional") == expected


@pytest.mark.parametrize("sizes, n, expected", [
    ({"a": 40, "b": 40, "c": 40}, 30, {"a": 10, "b": 10, "c": 10}),
    # a is smaller than its share and is taken whole; b and c split the rest
    ({"a": 2, "b": 10, "c": 10}, 12, {"a": 2, "b": 5, "c": 5}),
    # 11 over two strata: the odd one goes to the larger stratum
    ({"a": 2, "b": 10, "c": 12}, 13, {"a": 2, "b": 5, "c": 6}),
])
def test_equal_allocation_caps_small_strata_and_shares_the_surplus(sizes: dict, n: int, expected: dict) -> None:
    assert allocate(sizes, n, "equal") == expected
    assert sum(expected.values()) == n


def test_a_stratified_sample_hits_the_requested_proportions() -> None:
    units = population({"OK": 600, "ERROR": 300, "IN_PROGRESS": 100})
    outcome = stratified_sample(units, n=100, seed=3, allocation="proportional")
    assert Counter(s for _, s, _ in outcome.selected) == {"OK": 60, "ERROR": 30, "IN_PROGRESS": 10}
    assert {s.stratum: (s.population, s.sampled, s.selection_probability) for s in outcome.strata} == {
        "OK": (600, 60, 0.1), "ERROR": (300, 30, 0.1), "IN_PROGRESS": (100, 10, 0.1)}


def test_selection_probabilities_reweight_back_to_the_population() -> None:
    sizes = {"fast": 500, "medium": 300, "slow": 37}
    outcome = stratified_sample(population(sizes), n=60, seed=11, allocation="equal")
    weighted = Counter()
    for _, stratum, probability in outcome.selected:
        weighted[stratum] += 1 / probability
    assert {k: round(v) for k, v in weighted.items()} == sizes  # Horvitz-Thompson totals are exact per stratum


def test_the_same_seed_gives_the_same_sample_and_another_seed_a_different_one() -> None:
    units = population({"a": 200, "b": 100})
    first = stratified_sample(units, n=30, seed=7)
    again = stratified_sample(list(reversed(units)), n=30, seed=7)
    other = stratified_sample(units, n=30, seed=8)
    assert sorted(first.selected) == sorted(again.selected)
    assert sorted(first.selected) != sorted(other.selected)


def test_adding_traces_to_the_population_keeps_most_of_a_sample() -> None:
    before = {u for u, _, _ in stratified_sample(population({"a": 1000}), n=100, seed=1).selected}
    after = {u for u, _, _ in stratified_sample(population({"a": 1050}), n=100, seed=1).selected}
    assert len(before & after) >= 85


def test_no_n_keeps_everything_with_probability_one() -> None:
    outcome = stratified_sample(population({"a": 3, "b": 2}), n=None, seed=0)
    assert len(outcome.selected) == 5 and {p for _, _, p in outcome.selected} == {1.0}
