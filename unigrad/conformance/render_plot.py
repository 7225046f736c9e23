"""A PNG heatmap of log10 relative error, case × (backend, device, dtype), one panel per area.

Needs matplotlib.

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

from unigrad.conformance.matrix import Matrix, build_matrix
from unigrad.conformance.render import column_label
from unigrad.conformance.results import ERROR, FAIL, KNOWN, Report

#: Errors below this show as the floor colour (float64 agreement is often exactly 0).
ERROR_FLOOR = 1e-17


def log10_error(value: float) -> float:
    """log10 of a relative error, floored so exact agreement is drawable."""
    return math.log10(max(value, ERROR_FLOOR)) if math.isfinite(value) else 1.0


def render_plot(report: Report, areas: Mapping[str, str], path: str | Path) -> Path:
    """Write the heatmap to ``path`` and return it: one panel per area (op family), one colour scale.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'unigrad[plot]'``).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    matrix = build_matrix(report, areas)
    groups = [(group, cases) for group, cases in matrix.groups.items() if cases]
    rows = sum(len(cases) for _, cases in groups)
    # Each panel's title takes about two rows' height.
    height = max(4.0, 0.16 * rows + 0.32 * len(groups) + 1.5)
    width = max(5.0, 0.9 * len(matrix.columns) + 3.5)
    figure, panels = plt.subplots(
        len(groups), 1, figsize=(width, height), sharex=True, squeeze=False, layout="constrained",
        gridspec_kw={"height_ratios": [len(cases) for _, cases in groups]},
    )  # fmt: skip
    image = None
    for axes, (group, cases) in zip(panels[:, 0], groups, strict=True):
        values, marks = _panel(matrix, cases)
        image = axes.imshow(values, aspect="auto", cmap="viridis", vmin=-17, vmax=0, interpolation="nearest")
        for x, y, text in marks:
            axes.text(x, y, text, ha="center", va="center", color="white", fontsize=7, fontweight="bold")
        axes.set_yticks(range(len(cases)), cases, fontsize=6)
        axes.set_title(f"{group} ({len(cases)})", fontsize=8, loc="left")
    bottom = panels[-1, 0]
    bottom.set_xticks(range(len(matrix.columns)), [column_label(c) for c in matrix.columns], rotation=60,
                      ha="right", fontsize=7)  # fmt: skip
    figure.suptitle(
        "unigrad conformance: log10 max relative error (k = known difference, x = fail)", fontsize=9
    )
    if image is not None:
        # One scale for every panel; about 30 rows tall, not the whole column of panels.
        shrink = min(1.0, max(0.25, 30 / rows))
        figure.colorbar(image, ax=panels[:, 0].tolist(), label="log10 relative error", shrink=shrink)
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _panel(matrix: Matrix, cases: list[str]) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """One area's log10 errors (nan where nothing ran) and its cell marks ``(x, y, text)``."""
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
    return values, marks
