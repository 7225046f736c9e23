"""One row of the results table, and the formatting shared by every benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks._timing import Spread


@dataclass
class Result:
    """A measured comparison: one row of ``docs/benchmarks.md``.

    Attributes:
        case: the benchmark, e.g. ``"2. MLP 784-256-10, batch 128"``.
        backend: ``"torch"``, ``"tensorflow"``, ``"jax"`` or ``"-"`` for backend-free cases.
        native: the baseline's figure, formatted (median per call, size, ...).
        unigrad: unigrad's figure, formatted.
        ratio: the comparison the target is about (a ratio or an added cost), median and IQR.
        target: the target, in words (``"≤ 1.05×"``); empty when the row is informational.
        met: whether the target is met; ``None`` when there is no target or nothing was measured.
        notes: what the baseline was and anything else worth knowing (other native forms...).
        figures: the raw numbers behind the row (seconds, ratios, bytes), for programs and tests.
    """

    case: str
    backend: str
    native: str
    unigrad: str
    ratio: str
    target: str = ""
    met: bool | None = None
    notes: str = ""
    figures: dict[str, float] = field(default_factory=dict)


def pending(case: str, backend: str, why: str, target: str = "") -> Result:
    """A row for a benchmark that could not run (missing feature or framework)."""
    return Result(case, backend, "pending", "pending", "pending", target, None, why)


def fmt_time(seconds: float) -> str:
    """``seconds`` in the unit that reads best (ns, µs, ms or s), three significant figures."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(spread: Spread) -> str:
    """``1.02× (IQR 0.99–1.05)``."""
    return f"{spread.median:.3f}× (IQR {spread.q1:.3f}–{spread.q3:.3f})"


def fmt_added(spread: Spread, unit: str = "µs", per: str = "call") -> str:
    """An added cost given in ``unit`` already: ``+3.1 µs/call (IQR 2.5–3.8)``."""
    return f"{spread.median:+.3g} {unit}/{per} (IQR {spread.q1:.3g}–{spread.q3:.3g})"


def fmt_bytes(size: float) -> str:
    """A size in MiB (or GiB above 10 GiB)."""
    mib = size / 2**20
    return f"{mib / 1024:.1f} GiB" if mib >= 10 * 1024 else f"{mib:.0f} MiB"
