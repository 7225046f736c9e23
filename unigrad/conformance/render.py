"""Render a report's matrix as console text or Markdown, with a one-line summary.

Cells read: ``ok`` (agrees), ``known`` (another valid gradient at a kink, or a declared difference),
``n/a`` (the framework refuses the operation at that precision), ``err`` (an exception), or the
worst relative error followed by ``!`` for a disagreement.

Example:
    >>> from unigrad.conformance.results import Comparison, Report
    >>> report = Report(0, ["c"], ["jax"], ["float32"], {"jax": ["cpu"]}, {}, [
    ...     Comparison("c", "reference", "jax", "cpu", "float32", "fd", "pass", 1e-4, 1e-5)])
    >>> print(summary_line(report))
    1 comparisons: 1 pass, 0 known, 0 n/a, 0 fail, 0 error — all backends agree
"""

from __future__ import annotations

from collections.abc import Mapping

from unigrad.conformance.matrix import Cell, Column, Matrix, build_matrix
from unigrad.conformance.results import ERROR, FAIL, KNOWN, PASS, UNSUPPORTED, Report

LEGEND = (
    "ok = agrees · known = another valid gradient or a declared difference · "
    "n/a = a declared gap (op or dtype; reason in the JSON) · err = raised · "
    "3e-02! = disagrees (worst rel. error)"
)

_DTYPE_SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}


def cell_text(cell: Cell | None) -> str:
    """The short text of one cell."""
    if cell is None:
        return "-"
    if cell.status == FAIL:
        return f"{cell.max_rel_err:.0e}!"
    return {PASS: "ok", KNOWN: "known", UNSUPPORTED: "n/a", ERROR: "err"}[cell.status]


def column_label(column: Column) -> str:
    """``torch/cpu/f32``-style label of a column."""
    backend, device, dtype = column
    return f"{backend}/{device}/{_DTYPE_SHORT.get(dtype, dtype)}"


def summary_line(report: Report) -> str:
    """Counts per status and the verdict."""
    counts = report.counts()
    total = sum(counts.values())
    labels = ((PASS, "pass"), (KNOWN, "known"), (UNSUPPORTED, "n/a"), (FAIL, "fail"), (ERROR, "error"))
    parts = [f"{counts.get(status, 0)} {label}" for status, label in labels]
    verdict = "all backends agree" if report.ok else "DISAGREEMENTS FOUND"
    return f"{total} comparisons: {', '.join(parts)} — {verdict}"


def render_text(report: Report, areas: Mapping[str, str], all_rows: bool = False) -> str:
    """The matrix as aligned console text, grouped by area, with a legend and the summary.

    Unless ``all_rows``, a row whose every cell is ``ok`` is left out: an area lists only its other
    rows, with how many it left out (``kink (3 of 13 rows; 10 all ok, not shown)``), an area with
    nothing else is one line (``reduction: 15 rows, all ok``), and a last line counts them all.
    """
    matrix = build_matrix(report, areas)
    labels = [column_label(c) for c in matrix.columns]
    shown = {
        group: [case for case in cases if all_rows or not _all_ok(matrix, case)]
        for group, cases in matrix.groups.items()
    }
    hidden = sum(len(cases) - len(shown[group]) for group, cases in matrix.groups.items())
    name_width = max([len(case) + 2 for cases in shown.values() for case in cases] + [len("case")])
    widths = [max(len(label), 6) for label in labels]
    lines = []
    if any(shown.values()):
        lines.append(
            "case".ljust(name_width)
            + "  ".join(label.rjust(w) for label, w in zip(labels, widths, strict=True))
        )
    for group, cases in matrix.groups.items():
        if not shown[group]:
            lines.append(f"{group}: {_rows(len(cases))}, all ok")
            continue
        left_out = len(cases) - len(shown[group])
        lines.append(
            f"{group} ({len(shown[group])} of {_rows(len(cases))}; {left_out} all ok, not shown)"
            if left_out
            else group
        )
        for case in shown[group]:
            cells = [
                cell_text(matrix.cell(case, column)).rjust(w)
                for column, w in zip(matrix.columns, widths, strict=True)
            ]
            lines.append(f"  {case}".ljust(name_width) + "  ".join(cells))
    if hidden:
        lines.append(f"{_rows(hidden)} with every cell ok not shown (--all-rows shows them)")
    lines += ["", LEGEND, _failure_lines(matrix), summary_line(report)]
    return "\n".join(line for line in lines if line is not None)


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _all_ok(matrix: Matrix, case: str) -> bool:
    """Whether the row ran somewhere and every cell that ran agrees (``ok``)."""
    cells = [matrix.cell(case, column) for column in matrix.columns]
    return any(cells) and all(cell is None or cell.status == PASS for cell in cells)


def _failure_lines(matrix: Matrix) -> str:
    reasons = []
    for (case, column), cell in matrix.cells.items():
        if cell.status in (FAIL, ERROR) and cell.reasons:
            reasons.append(f"{case} on {column_label(column)}: {cell.reasons[0]}")
    return "\n".join(reasons)


def render_markdown(report: Report, areas: Mapping[str, str], image: str | None = None) -> str:
    """The matrix as a Markdown document: versions, the summary, the heatmap if given, one table per area."""
    matrix = build_matrix(report, areas)
    labels = [column_label(c) for c in matrix.columns]
    versions = ", ".join(f"{name} {version}" for name, version in sorted(report.versions.items()))
    lines = [
        "# unigrad conformance report",
        "",
        f"Seed {report.seed}; {versions}.",
        "",
        f"**{summary_line(report)}**",
        "",
        LEGEND,
        "",
    ]
    if image:
        lines += [f"![log10 relative error per case and backend/device/dtype]({image})", ""]
    for group, cases in matrix.groups.items():
        all_ok = sum(_all_ok(matrix, case) for case in cases)
        lines += [
            f"## {group}",
            "",
            f"{_rows(len(cases))}, {all_ok} with every cell ok.",
            "",
            "| case | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        for case in cases:
            cells = [cell_text(matrix.cell(case, column)) for column in matrix.columns]
            lines.append(f"| `{case}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
