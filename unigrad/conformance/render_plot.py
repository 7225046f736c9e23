"""A PNG heatmap of log10 relative error, case × (backend, device, dtype). Needs matplotlib.

Example:
    >>> from unigrad.conformance.render_plot import log10_error
    >>> log10_error(1e-7)
    -7.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from unigrad.conformance.matrix import build_matrix
from unigrad.conformance.render import column_label
from unigrad.conformance.results import ERROR, FAIL, KNOWN, Report

#: Errors below this show as the floor colour (float64 agreement is often exactly 0).
ERROR_FLOOR = 1e-17


def log10_error(value: float) -> float:
    """log10 of a relative error, floored so exact agreement is drawable."""
    return math.log10(max(value, ERROR_FLOOR)) if math.isfinite(value) else 1.0


def render_plot(report: Report, areas: Mapping[str, str], path: str | Path) -> Path:
    """Write the heatmap to ``path`` and return it.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'unigrad[plot]'``).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    matrix = build_matrix(report, areas)
    cases = [case for group in matrix.groups.values() for case in group]
    values = np.full((len(cases), len(matrix.columns)), np.nan)
    marks = []
    for i, case in enumerate(cases):
        for j, column in enumerate(matrix.columns):
            cell = matrix.cell(case, column)
            if cell is None:
                continue
            values[i, j] = log10_error(cell.max_rel_err) if cell.status != ERROR else 1.0
            if cell.status in (KNOWN, FAIL, ERROR):
                marks.append((j, i, {KNOWN: "k", FAIL: "x", ERROR: "!"}[cell.status]))
    height = max(4.0, 0.16 * len(cases) + 1.5)
    width = max(5.0, 0.9 * len(matrix.columns) + 3.5)
    figure, axes = plt.subplots(figsize=(width, height))
    image = axes.imshow(values, aspect="auto", cmap="viridis", vmin=-17, vmax=0, interpolation="nearest")
    for x, y, text in marks:
        axes.text(x, y, text, ha="center", va="center", color="white", fontsize=7, fontweight="bold")
    axes.set_xticks(range(len(matrix.columns)), [column_label(c) for c in matrix.columns], rotation=60,
                    ha="right", fontsize=7)  # fmt: skip
    axes.set_yticks(range(len(cases)), cases, fontsize=6)
    axes.set_title(
        "unigrad conformance: log10 max relative error (k = known difference, x = fail)", fontsize=9
    )
    figure.colorbar(image, ax=axes, label="log10 relative error")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
