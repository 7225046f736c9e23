"""Cases 1-4: eager ``ug.value_and_grad`` against the hand-written native forms, interleaved.

Every native form of the backend and unigrad run in the same rounds (:func:`benchmarks._timing.
interleave`); the fastest native form (by median) is the baseline, the others are reported in the
notes. Ratios and differences are taken round by round, then summarised by median and IQR.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._results import Result, fmt_added, fmt_ratio, fmt_time, pending
from benchmarks._timing import differences, interleave, ratios
from benchmarks.workloads import BACKENDS, Workload, build, is_installed

UNIGRAD = "unigrad"


@dataclass(frozen=True)
class EagerCase:
    """One eager benchmark: what to build, how to judge it, and its target."""

    title: str
    problem: str
    sizes: dict[str, Any]
    judge: str  # "ratio", "added_per_call" or "added_per_leaf"
    limit: float
    target: str


def cases(quick: bool = False) -> list[EagerCase]:
    """Cases 1-4 at the brief's sizes (``quick`` shrinks only the transformer batch)."""
    batch = 1 if quick else 4
    return [
        EagerCase(
            "1. tiny loss sum(x**2), 1 element",
            "tiny",
            {"size": 1},
            "added_per_call",
            15.0,
            "≤ 15 µs added/call",
        ),
        EagerCase(
            "1. tiny loss sum(x**2), 1,000 elements",
            "tiny",
            {"size": 1000},
            "added_per_call",
            15.0,
            "≤ 15 µs added/call",
        ),
        EagerCase("2. MLP 784-256-10, batch 128, softmax CE", "mlp", {}, "ratio", 1.05, "≤ 1.05×"),
        # Host-bound on the CPU (~0.2 ms a torch step, most of it Python and dispatch): the share a
        # launch-bound GPU step pays for unigrad's host time, measurable on a machine without one.
        EagerCase(
            "2. small MLP 32-16-10, batch 4 (host-bound, as a small GPU step)",
            "mlp",
            {"batch": 4, "sizes": (32, 16, 10)},
            "ratio",
            1.05,
            "≤ 1.05× (the GPU MLP's)",
        ),
        EagerCase(
            "3. pytree of 1,000 leaves (8 floats each)",
            "pytree",
            {"leaves": 1000},
            "added_per_leaf",
            1.0,
            "≤ 1 µs added/leaf/call",
        ),
        EagerCase(
            f"4. transformer block, batch {batch}, seq 128, d 256, 4 heads, ff 1024",
            "transformer",
            {"batch": batch},
            "ratio",
            1.05,
            "≤ 1.05× (the MLP's)",
        ),
    ]


def time_workload(work: Workload, rounds: int, inner: int | None = None) -> dict[str, list[float]]:
    """Per-call seconds of every native form and of unigrad on ``work``, interleaved."""
    contenders: dict[str, Callable[[], Any]] = dict(work.natives)
    contenders[UNIGRAD] = work.unigrad_step
    return interleave(contenders, rounds=rounds, inner=inner)


#: The per-call cases take this many times the rounds: their per-round spread (about ±10 µs on eager
#: JAX's 0.9 ms call) is large next to a 15 µs target, and a median of 41 rounds moves by ±3 µs.
ADDED_PER_CALL_ROUNDS = 3


def case_rounds(case: EagerCase, rounds: int) -> int:
    """Rounds for ``case``: more for the per-call overhead cases (see ``ADDED_PER_CALL_ROUNDS``)."""
    return rounds * ADDED_PER_CALL_ROUNDS if case.judge == "added_per_call" else rounds


def fastest_native(times: dict[str, list[float]]) -> str:
    """The native form with the lowest median time: the baseline unigrad is held to."""
    natives = [name for name in times if name != UNIGRAD]
    return min(natives, key=lambda name: statistics.median(times[name]))


def judge(case: EagerCase, work: Workload, times: dict[str, list[float]]) -> Result:
    """The results-table row of ``case`` on ``work``'s backend from the measured ``times``."""
    base = fastest_native(times)
    native_s = statistics.median(times[base])
    unigrad_s = statistics.median(times[UNIGRAD])
    ratio = ratios(times[UNIGRAD], times[base])
    added = differences(times[UNIGRAD], times[base]).scaled(1e6)
    figures = {
        "native_s": native_s,
        "unigrad_s": unigrad_s,
        "ratio": ratio.median,
        "ratio_q1": ratio.q1,
        "ratio_q3": ratio.q3,
        "added_us": added.median,
    }
    if case.judge == "ratio":
        shown, value = fmt_ratio(ratio), ratio.median
    elif case.judge == "added_per_call":
        shown, value = fmt_added(added), added.median
    else:
        leaves = case.sizes["leaves"]
        per_leaf = added.scaled(1.0 / leaves)
        shown, value = fmt_added(per_leaf, per="leaf"), per_leaf.median
        figures["added_us_per_leaf"] = value
    notes = [f"baseline: {base}"]
    for name in times:
        if name not in (base, UNIGRAD):
            other = ratios(times[name], times[base])
            notes.append(f"{name}: {fmt_time(statistics.median(times[name]))} ({other.median:.2f}× baseline)")
    if case.judge != "ratio":
        notes.append(f"ratio {ratio.median:.2f}×")
    return Result(
        case.title,
        work.backend,
        fmt_time(native_s),
        fmt_time(unigrad_s),
        shown,
        case.target,
        value <= case.limit,
        "; ".join(notes),
        figures,
    )


def run(
    backends: tuple[str, ...] = BACKENDS,
    *,
    rounds: int = 31,
    quick: bool = False,
    selected: list[EagerCase] | None = None,
    inner: int | None = None,
) -> list[Result]:
    """Cases 1-4 on every installed backend of ``backends``; missing ones give 'pending' rows."""
    results = []
    for case in selected if selected is not None else cases(quick):
        for backend in backends:
            if not is_installed(backend):
                results.append(pending(case.title, backend, f"{backend} not installed", case.target))
                continue
            work = build(backend, case.problem, **case.sizes)
            results.append(judge(case, work, time_workload(work, case_rounds(case, rounds), inner)))
    return results
