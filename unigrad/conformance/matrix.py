"""The case × (backend, device, dtype) matrix of a report: one cell per case and column.

A cell summarises every comparison of its case whose subject is its column (against the reference,
against another backend, against the CPU): the worst status wins, and the cell keeps the largest
relative error seen, so a report can be read at a glance as text, Markdown or a heatmap.

Example:
    >>> from unigrad.conformance.results import Comparison, Report
    >>> report = Report(0, ["c"], ["torch"], ["float64"], {"torch": ["cpu"]}, {}, [
    ...     Comparison("c", "reference", "torch", "cpu", "float64", "fd", "pass", 1e-6, 1e-8)])
    >>> matrix = build_matrix(report, {"c": "area"})
    >>> matrix.columns, matrix.cell("c", matrix.columns[0]).status
    ([('torch', 'cpu', 'float64')], 'pass')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from unigrad.conformance.results import ERROR, FAIL, KNOWN, PASS, UNSUPPORTED, Report

#: Worse statuses sort later; a cell shows the worst of its comparisons.
SEVERITY = {PASS: 0, UNSUPPORTED: 1, KNOWN: 2, FAIL: 3, ERROR: 4}

Column = tuple[str, str, str]  # (backend, device, dtype)


@dataclass
class Cell:
    """The summary of one case on one (backend, device, dtype)."""

    status: str = PASS
    max_rel_err: float = 0.0
    comparisons: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class Matrix:
    """Rows grouped by area, columns in report order, and the cells between them."""

    groups: dict[str, list[str]]
    columns: list[Column]
    cells: dict[tuple[str, Column], Cell]

    def cell(self, case: str, column: Column) -> Cell | None:
        """The cell of ``case`` at ``column``, or ``None`` if nothing ran there."""
        return self.cells.get((case, column))


def build_matrix(report: Report, areas: Mapping[str, str]) -> Matrix:
    """The matrix of ``report``; ``areas`` maps a case name to the group it is listed under."""
    columns: list[Column] = [
        (backend, device, dtype)
        for backend in report.backends
        for device in report.devices.get(backend, [])
        for dtype in report.dtypes
    ]
    cells: dict[tuple[str, Column], Cell] = {}
    for comparison in report.comparisons:
        key = (comparison.case, (comparison.backend, comparison.device, comparison.dtype))
        cell = cells.setdefault(key, Cell())
        cell.comparisons += 1
        # A pairwise or device comparison marks the cell only when it fails: a difference another
        # backend declared is that backend's cell, not this one's.
        counts = comparison.kind == "reference" or comparison.status in (FAIL, ERROR)
        if counts and SEVERITY[comparison.status] > SEVERITY[cell.status]:
            cell.status = comparison.status
        if counts:
            cell.max_rel_err = max(cell.max_rel_err, comparison.max_rel_err)
        if counts and comparison.reason and comparison.reason not in cell.reasons:
            cell.reasons.append(comparison.reason)
    groups: dict[str, list[str]] = {}
    for case in report.cases:
        groups.setdefault(areas.get(case, "other"), []).append(case)
    return Matrix(groups, [c for c in columns if any(k[1] == c for k in cells)], cells)
