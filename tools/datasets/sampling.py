"""Seeded stratified sampling that keeps every unit's selection probability.

Allocation: ``proportional`` gives stratum h about ``n * N_h / N`` units, ``equal`` about ``n / H``
(capped at ``N_h``, the surplus shared among the larger strata). Fractions are settled by
largest remainder, so the allocations add up to exactly ``n`` (or ``N`` when ``n >= N``).

Within a stratum, units are ranked by ``sha256(seed, unit id)`` and the first ``n_h`` are taken:
a simple random sample without replacement that is reproducible from the seed alone and barely
moves when traces are added to the population. Each selected unit's inclusion probability is
``n_h / N_h``, so Horvitz-Thompson weights ``1 / p`` recover population estimates later.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

Allocation = Literal["proportional", "equal"]


class StratumCount(BaseModel):
    """One stratum's size in the population and in the sample."""

    stratum: str = Field(description="The stratum label, e.g. 'status=ERROR|model=gpt-4o', or 'all'.")
    population: int | None = Field(description="Selected traces in this stratum before sampling (null when "
                                               "unknown, e.g. records added by hand or imported).")
    sampled: int = Field(description="Records kept from this stratum.")
    selection_probability: float | None = Field(description="sampled / population: each record's inclusion "
                                                            "probability (null when unknown).")


class SampleOutcome(BaseModel):
    selected: list[tuple[str, str, float]] = Field(description="(unit id, stratum, selection probability).")
    strata: list[StratumCount]


def _largest_remainder(quotas: Mapping[str, float], total: int, tie: Mapping[str, Hashable]) -> dict[str, int]:
    """Integers that add up to ``total``, each the floor of its quota plus at most one."""
    base = {k: math.floor(q + 1e-9) for k, q in quotas.items()}
    left = total - sum(base.values())
    order = sorted(quotas, key=lambda k: (-(quotas[k] - base[k]), tie[k]))
    for k in order[:max(0, left)]:
        base[k] += 1
    return base


def allocate(sizes: Mapping[str, int], n: int, allocation: Allocation) -> dict[str, int]:
    """Records to draw from each stratum (``sizes`` = population per stratum)."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    # Ties go to the larger stratum, then alphabetically, so results never depend on dict order.
    tie = {k: (-sizes[k], k) for k in sizes}
    if allocation == "proportional":
        return _largest_remainder({k: n * s / total for k, s in sizes.items()}, n, tie)
    # Equal: water-filling. Strata smaller than their share are taken whole; the rest split evenly.
    alloc: dict[str, int] = {}
    remaining, open_ = n, sorted(sizes, key=lambda k: (sizes[k], k))
    while open_ and sizes[open_[0]] <= remaining / len(open_):
        k = open_.pop(0)
        alloc[k] = sizes[k]
        remaining -= sizes[k]
    if open_:
        share = remaining / len(open_)
        alloc.update(_largest_remainder({k: share for k in open_}, remaining, tie))
    return alloc


def rank_key(seed: int, unit_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{unit_id}".encode()).hexdigest()


def stratified_sample(units: Sequence[tuple[str, str]], *, n: int | None, seed: int,
                      allocation: Allocation = "proportional") -> SampleOutcome:
    """Sample ``units`` (id, stratum); ``n=None`` keeps everything with probability 1."""
    by_stratum: dict[str, list[str]] = {}
    for unit_id, stratum in units:
        by_stratum.setdefault(stratum, []).append(unit_id)
    sizes = {k: len(v) for k, v in by_stratum.items()}
    alloc = dict(sizes) if n is None else allocate(sizes, n, allocation)
    selected: list[tuple[str, str, float]] = []
    strata: list[StratumCount] = []
    for stratum in sorted(by_stratum):
        ids, take = by_stratum[stratum], alloc.get(stratum, 0)
        probability = take / len(ids)
        chosen = sorted(ids, key=lambda i: rank_key(seed, i))[:take]
        selected += [(i, stratum, probability) for i in chosen]
        strata.append(StratumCount(stratum=stratum, population=len(ids), sampled=take,
                                   selection_probability=round(probability, 6)))
    return SampleOutcome(selected=selected, strata=strata)
