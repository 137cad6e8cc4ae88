"""Timing with warm-up and repeats (median, p95), and memory read from /proc (no psutil)."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    """Seconds per run of one workload. ``result`` is what the last run returned (for checks)."""

    samples: list[float] = field(default_factory=list)
    warmed: bool = True
    result: Any = None
    #: The first line of the error the workload raised instead of finishing (no samples then).
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 0.95)

    def as_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"error": self.error, "runs": 0}
        return {"median_s": self.median, "p95_s": self.p95, "runs": len(self.samples), "warmed": self.warmed,
                "samples_s": self.samples}


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), for short sample lists."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure(fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 1, budget_s: float = 30.0) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then up to ``repeats`` timed runs within ``budget_s``.

    A workload whose first (warm-up) run already takes more than half the budget is not run
    again: that run is the only sample and ``warmed`` is False (said so in the report).
    """
    timing = Timing()
    spent = 0.0
    for _ in range(warmup):
        t0 = time.perf_counter()
        timing.result = fn()
        elapsed = time.perf_counter() - t0
        spent += elapsed
        if elapsed > budget_s / 2:
            timing.samples.append(elapsed)
            timing.warmed = False
            return timing
    while len(timing.samples) < max(1, repeats):
        t0 = time.perf_counter()
        timing.result = fn()
        elapsed = time.perf_counter() - t0
        timing.samples.append(elapsed)
        spent += elapsed
        if spent > budget_s:
            break
    return timing


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of a process in bytes, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def child_pids(parent: int | None = None) -> list[int]:
    """Direct children of ``parent`` (default: this process), read from /proc/*/stat."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def as_jsonable(obj: Any) -> Any:
    if isinstance(obj, Timing):
        return obj.as_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return obj
