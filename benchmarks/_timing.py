"""Interleaved timing: every contender runs in the same process, in alternating rounds.

A round times each contender once (``inner`` calls in a row); the order rotates from round to round
so no contender always runs first (cache-warm) or last. Noise that hits one round hits every
contender of that round, so per-round *ratios* are far steadier than absolute times on a busy machine.

Example:
    >>> times = interleave({"a": lambda: None, "b": lambda: None}, rounds=3, inner=2, warmup=1)
    >>> sorted(times), len(times["a"])
    (['a', 'b'], 3)
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Aim for samples at least this long, so the timer's resolution and one-off hiccups do not dominate.
SAMPLE_SECONDS = 0.01


@dataclass(frozen=True)
class Spread:
    """A median with its interquartile range (first and third quartiles)."""

    median: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        """The median and quartiles of ``values`` (a single value gives a zero-width range)."""
        if len(values) == 1:
            return cls(values[0], values[0], values[0])
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(statistics.median(values), q1, q3)

    def scaled(self, factor: float) -> Spread:
        """The same spread with every figure multiplied by ``factor`` (e.g. seconds to µs)."""
        return Spread(self.median * factor, self.q1 * factor, self.q3 * factor)


def median_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``values`` (95% for ``z=1.96``): the
    order statistics ``n/2 -+ z*sqrt(n)/2`` (the binomial count of values below the true median,
    approximated as normal). It says how far the median of these rounds can be trusted.

    Example:
        >>> median_interval([float(v) for v in range(1, 101)])
        (41.0, 61.0)
    """
    ordered = sorted(values)
    n = len(ordered)
    half_width = z * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half_width))
    high = min(n - 1, math.ceil(n / 2 + half_width))
    return ordered[low], ordered[high]


def calibrate(fn: Callable[[], Any], sample_seconds: float = SAMPLE_SECONDS) -> int:
    """How many calls of ``fn`` make one sample of about ``sample_seconds`` (at least one)."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(10_000, round(sample_seconds / once)))


def interleave(
    contenders: dict[str, Callable[[], Any]],
    *,
    rounds: int,
    inner: int | None = None,
    warmup: int = 3,
) -> dict[str, list[float]]:
    """Seconds per call of each contender, one figure per round, measured in alternating rounds.

    Args:
        contenders: name -> a function of no arguments that runs one complete call, including
            whatever synchronisation makes the result ready (``block_until_ready`` for JAX).
        rounds: number of rounds; each contender gets one sample per round.
        inner: calls per sample; ``None`` calibrates it from the slowest contender.
        warmup: untimed calls of each contender first (caches, allocators, lazy imports).

    Returns:
        name -> ``rounds`` per-call times in seconds, round ``i`` of every contender taken together.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    if inner is None:
        inner = min(calibrate(contenders[name]) for name in names)
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    # Everything alive now (three frameworks' worth of objects) is moved out of the collector's
    # sight, so the collection between rounds only looks at what the rounds themselves made.
    gc.freeze()
    gc.disable()  # a collection landing in one contender's sample would bias that round
    try:
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                fn = contenders[name]
                start = time.perf_counter()
                for _ in range(inner):
                    fn()
                times[name].append((time.perf_counter() - start) / inner)
            gc.collect()
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    return times


def ratios(numerator: list[float], denominator: list[float]) -> Spread:
    """Median and IQR of the per-round ratios ``numerator[i] / denominator[i]``."""
    return Spread.of([a / b for a, b in zip(numerator, denominator, strict=True)])


def differences(minuend: list[float], subtrahend: list[float]) -> Spread:
    """Median and IQR of the per-round differences ``minuend[i] - subtrahend[i]``."""
    return Spread.of([a - b for a, b in zip(minuend, subtrahend, strict=True)])
