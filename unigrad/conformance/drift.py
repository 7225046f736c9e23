"""What changed between two conformance reports (``unigrad check --json``), say two installs.

A row is one case on one backend/device/dtype, the cell of the check matrix (its worst status, its
worst relative error). Rows present in both reports are compared, and one that changed is listed as:

- ``new failure``: ``fail`` or ``err`` in NEW but not in OLD (also a row only NEW has) — the only
  kind that makes :attr:`Drift.ok` false (``unigrad diff`` exits 1);
- ``fixed``: ``fail`` or ``err`` in OLD, within the valid set in NEW;
- ``still failing``: failing in both, with another status or a materially moved error;
- ``drift``: within the valid set in both (``ok``, ``known``, ``n/a``), but the verdict changed
  (``ok`` → ``known``: a framework moved to another valid subgradient), the chosen subgradient
  changed (the reason of a ``known`` reference comparison, its version numbers left out), or the
  worst relative error moved materially.

**Moved materially**: the larger of the two worst relative errors is at least ten times the smaller
(:data:`MATERIAL_FACTOR`) and at least a tenth of the row's relative tolerance
(:data:`MATERIAL_SHARE`, the ``rtol`` of its reference comparison). Changes in the last bits of an
error far inside the tolerance (1e-16 → 1e-13 at float64) are noise and not listed; an error that
grows to within ten times of its bound is.

Rows only in OLD are listed as vanished (a whole case or column once), rows only in NEW as new;
neither is a failure unless a new row fails. A framework a report did not run shows as ``-``.

Example:
    >>> from unigrad.conformance.results import Comparison, Report
    >>> def report(version, status, reason=""):
    ...     row = Comparison("kink_clip_at_bounds", "reference", "torch", "cpu", "float64",
    ...                      "closed form", status, 1e-6, 1e-8, reason=reason)
    ...     return Report(0, [row.case], ["torch"], ["float64"], {"torch": ["cpu"]},
    ...                   {"torch": version}, [row])
    >>> drift = diff_reports(report("2.13.0", "pass"),
    ...                      report("2.14.1", "known", "torch 2.14.1: 0 at params['x'][0]"))
    >>> [(row.case, row.kind, row.old.status, row.new.status) for row in drift.rows], drift.ok
    ([('kink_clip_at_bounds', 'drift', 'pass', 'known')], True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from unigrad.conformance.matrix import Column, build_matrix
from unigrad.conformance.results import ERROR, FAIL, KNOWN, PASS, UNSUPPORTED, Comparison, Report

#: An error moved materially when the larger is at least this many times the smaller ...
MATERIAL_FACTOR = 10.0
#: ... and at least this share of the row's relative tolerance.
MATERIAL_SHARE = 0.1

FAILED = frozenset({FAIL, ERROR})

#: Kinds of listed rows, in the order they are printed.
NEW_FAILURE, STILL_FAILING, FIXED, DRIFT, VANISHED, ADDED = (
    "new failure",
    "still failing",
    "fixed",
    "drift",
    "vanished",
    "new",
)
KINDS = (NEW_FAILURE, STILL_FAILING, FIXED, DRIFT, VANISHED, ADDED)

_STATUS_TEXT = {PASS: "ok", KNOWN: "known", UNSUPPORTED: "n/a", FAIL: "fail", ERROR: "err"}
_DTYPE_SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class RowState:
    """One row (case on one backend/device/dtype) as one report has it."""

    status: str
    max_rel_err: float
    rtol: float
    against: str = ""
    #: The subgradient the backend chose: ``""`` when it agrees with what it is compared with, the
    #: reason of a ``known`` comparison (versions left out) otherwise; ``None`` when there is none.
    choice: str | None = None
    #: Why the row is not ok (the first reason of its cell), if it says.
    reason: str = ""


@dataclass(frozen=True)
class RowChange:
    """A row that changed between the two reports, and how."""

    case: str
    area: str
    column: Column
    kind: str
    old: RowState | None
    new: RowState | None
    changes: tuple[str, ...] = ()


@dataclass
class Drift:
    """Everything that changed from OLD to NEW."""

    old_versions: dict[str, str]
    new_versions: dict[str, str]
    rows: list[RowChange] = field(default_factory=list)
    compared: int = 0
    failing_in_both: int = 0
    vanished_cases: list[str] = field(default_factory=list)
    added_cases: list[str] = field(default_factory=list)
    vanished_columns: list[Column] = field(default_factory=list)
    added_columns: list[Column] = field(default_factory=list)
    #: Rows only OLD has and rows only NEW has (listed or not).
    vanished_rows: int = 0
    added_rows: int = 0
    #: Case → area, for every case of either report; and how many cases each area has in each.
    areas: dict[str, str] = field(default_factory=dict)
    old_area_sizes: dict[str, int] = field(default_factory=dict)
    new_area_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[RowChange]:
        """Rows that fail (or raise) in NEW and did not in OLD."""
        return [row for row in self.rows if row.kind == NEW_FAILURE]

    @property
    def ok(self) -> bool:
        """Nothing left the valid set: no row newly fails."""
        return not self.failures

    def count(self, kind: str) -> int:
        return sum(row.kind == kind for row in self.rows)


def load_report(path: str | Path) -> Report:
    """The report ``unigrad check --json`` wrote to ``path``.

    Raises:
        ValueError: the file is missing, not JSON, or not such a report (the message names it).
    """
    try:
        raw = json.loads(Path(path).read_text())
        return Report.from_dict(raw)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{path}: not a report of `unigrad check --json` ({type(err).__name__}: {err})"
        ) from None


def catalogue_areas() -> dict[str, str]:
    """Case name → its area (first tag) for every catalogue case, gradient and transform."""
    from unigrad.conformance import CASES, TRANSFORM_CASES  # the package's names: stable across moves

    return {case.name: case.tags[0] for case in [*CASES, *TRANSFORM_CASES]}


def moved_materially(old: float, new: float, rtol: float) -> bool:
    """Whether a worst relative error moved materially (the rule in this module's docstring).

    Example:
        >>> moved_materially(1e-16, 1e-13, rtol=1e-6), moved_materially(1e-8, 2e-7, rtol=1e-6)
        (False, True)
    """
    low, high = sorted((old, new))
    if high == low or math.isnan(high):
        return False
    return high >= MATERIAL_SHARE * rtol and high >= MATERIAL_FACTOR * low


def without_versions(reason: str, versions: Mapping[str, str]) -> str:
    """``reason`` with each ``"<framework> <version>"`` reduced to the framework's name.

    Example:
        >>> without_versions("torch 2.14.1: 0 at params['x'][0] (jax 0.10.2: 0.5)",
        ...                  {"torch": "2.14.1", "jax": "0.10.2"})
        "torch: 0 at params['x'][0] (jax: 0.5)"
    """
    for name, version in sorted(versions.items(), key=lambda item: -len(item[1])):
        reason = reason.replace(f"{name} {version}", name)
    return reason


def column_text(column: Column) -> str:
    """``torch/cpu/f64``-style label of a column."""
    backend, device, dtype = column
    return f"{backend}/{device}/{_DTYPE_SHORT.get(dtype, dtype)}"


def _rows(report: Report) -> dict[tuple[str, Column], RowState]:
    matrix = build_matrix(report, {})
    references: dict[tuple[str, Column], Comparison] = {}
    tolerances: dict[tuple[str, Column], float] = {}
    for comparison in report.comparisons:
        key = (comparison.case, (comparison.backend, comparison.device, comparison.dtype))
        if comparison.kind == "reference":
            references.setdefault(key, comparison)
        tolerances[key] = min(tolerances.get(key, math.inf), comparison.rtol)
    rows = {}
    for key, cell in matrix.cells.items():
        reference = references.get(key)
        choice = None
        if reference is not None and reference.status == PASS:
            choice = ""
        elif reference is not None and reference.status == KNOWN:
            # "torch 2.14.1: 0 at ..." → "0 at ...": the row names the backend, the header its version.
            choice = without_versions(reference.reason, report.versions).removeprefix(f"{key[1][0]}: ")
        rtol = reference.rtol if reference is not None else tolerances[key]
        against = reference.against if reference is not None else ""
        reason = cell.reasons[0] if cell.reasons else ""
        rows[key] = RowState(cell.status, cell.max_rel_err, rtol, against, choice, reason)
    return rows


def _choice_text(state: RowState) -> str:
    return f"agrees with {state.against or 'its reference'}" if state.choice == "" else str(state.choice)


def _changes(old: RowState, new: RowState) -> list[str]:
    changes = []
    if old.choice is not None and new.choice is not None and old.choice != new.choice:
        changes.append(f"chose {_choice_text(new)}; was: {_choice_text(old)}")
    # Into or out of known, n/a or err the error says nothing new (the choice or the status does).
    comparable = old.status == new.status or {old.status, new.status} <= {PASS, FAIL}
    if comparable and moved_materially(old.max_rel_err, new.max_rel_err, min(old.rtol, new.rtol)):
        before, after = old.max_rel_err, new.max_rel_err
        if before > 0 and math.isfinite(before) and math.isfinite(after) and after > 0:
            by = f"×{after / before:.0e}; " if after > before else f"÷{before / after:.0e}; "
        else:
            by = ""
        changes.append(
            f"worst rel. error {_error_text(before)} → {_error_text(after)} ({by}rtol {new.rtol:g})"
        )
    return changes


def _error_text(value: float) -> str:
    return "0" if value == 0 else f"{value:.0e}"


def _kind(old: RowState, new: RowState, changes: list[str]) -> str | None:
    old_failed, new_failed = old.status in FAILED, new.status in FAILED
    if new_failed and not old_failed:
        return NEW_FAILURE
    if old_failed and not new_failed:
        return FIXED
    if old.status == new.status and not changes:
        return None
    return STILL_FAILING if new_failed else DRIFT


def diff_reports(old: Report, new: Report, areas: Mapping[str, str] | None = None) -> Drift:
    """Compare two reports row by row (the rules in this module's docstring).

    Args:
        old, new: the reports of the two installs.
        areas: case name → area, for grouping (default: the catalogue's, :func:`catalogue_areas`).

    Returns:
        A :class:`Drift`; ``drift.ok`` is false when a row newly fails.
    """
    if areas is None:
        areas = catalogue_areas()
    old_rows, new_rows = _rows(old), _rows(new)
    drift = Drift(dict(old.versions), dict(new.versions))
    old_cases = {case for case, _ in old_rows} | set(old.cases)
    new_cases = {case for case, _ in new_rows} | set(new.cases)
    old_columns = {column for _, column in old_rows}
    new_columns = {column for _, column in new_rows}
    drift.vanished_cases = [case for case in old.cases if case not in new_cases]
    drift.added_cases = [case for case in new.cases if case not in old_cases]
    drift.vanished_columns = sorted(old_columns - new_columns)
    drift.added_columns = sorted(new_columns - old_columns)
    drift.areas = {case: areas.get(case, "other") for case in old_cases | new_cases}
    for cases, sizes in ((old_cases, drift.old_area_sizes), (new_cases, drift.new_area_sizes)):
        for case in cases:
            sizes[drift.areas[case]] = sizes.get(drift.areas[case], 0) + 1
    drift.vanished_rows = len(old_rows.keys() - new_rows.keys())
    drift.added_rows = len(new_rows.keys() - old_rows.keys())

    for key in sorted(old_rows.keys() | new_rows.keys()):
        case, column = key
        before, after = old_rows.get(key), new_rows.get(key)
        area = areas.get(case, "other")
        if before is not None and after is not None:
            drift.compared += 1
            changes = _changes(before, after)
            if before.status != after.status:
                changes.insert(0, f"{_STATUS_TEXT[before.status]} → {_STATUS_TEXT[after.status]}")
            kind = _kind(before, after, changes)
            if kind is None:
                drift.failing_in_both += before.status in FAILED
                continue
            if kind in (NEW_FAILURE, STILL_FAILING) and after.reason:
                changes.append(after.reason)
            drift.rows.append(RowChange(case, area, column, kind, before, after, tuple(changes)))
        elif after is not None:
            if after.status in FAILED:
                changes = ("not in OLD", *([after.reason] if after.reason else []))
                drift.rows.append(RowChange(case, area, column, NEW_FAILURE, None, after, changes))
            elif case not in drift.added_cases and column not in drift.added_columns:
                drift.rows.append(RowChange(case, area, column, ADDED, None, after))
        elif case not in drift.vanished_cases and column not in drift.vanished_columns:
            drift.rows.append(RowChange(case, area, column, VANISHED, before, None))
    order = {kind: i for i, kind in enumerate(KINDS)}
    drift.rows.sort(key=lambda row: order[row.kind])
    return drift


def _version_lines(drift: Drift) -> list[str]:
    names = sorted(drift.old_versions.keys() | drift.new_versions.keys())
    width = max([len(name) for name in names] + [len("framework")])
    old_width = max([len(drift.old_versions.get(name, "-")) for name in names] + [3])
    lines = ["versions (OLD → NEW)"]
    for name in names:
        before, after = drift.old_versions.get(name, "-"), drift.new_versions.get(name, "-")
        mark = "   changed" if "-" not in (before, after) and before != after else ""
        lines.append(f"  {name.ljust(width)}  {before.ljust(old_width)} → {after}{mark}")
    return lines


def _status_of(state: RowState | None) -> str:
    return "-" if state is None else _STATUS_TEXT[state.status]


def render_drift(drift: Drift) -> str:
    """The drift as console text: versions side by side, then the changed rows by kind and area,
    then the whole-case and whole-column changes and a summary line."""
    lines = [*_version_lines(drift), ""]
    name_width = max([len(row.case) for row in drift.rows] + [len("case")])
    for kind in KINDS:
        rows = [row for row in drift.rows if row.kind == kind]
        if not rows:
            continue
        lines.append(f"{kind} ({len(rows)})")
        area = None
        for row in sorted(rows, key=lambda row: row.area):
            if row.area != area:
                area = row.area
                lines.append(f"  {area}")
            verdict = f"{_status_of(row.old)} → {_status_of(row.new)}"
            changes = [c for c in row.changes if c != verdict]
            line = f"    {row.case.ljust(name_width)}  {column_text(row.column):<18}  {verdict:<13}  "
            lines.append((line + "; ".join(changes)).rstrip())
        lines.append("")
    for label, cases, sizes in (
        ("vanished cases (in OLD, not in NEW)", drift.vanished_cases, drift.old_area_sizes),
        ("new cases (only in NEW)", drift.added_cases, drift.new_area_sizes),
    ):
        if cases:
            lines += [f"{label}: {len(cases)}", *_cases_by_area(drift, cases, sizes), ""]
    for label, columns in (
        ("vanished columns (in OLD, not in NEW)", drift.vanished_columns),
        ("new columns (only in NEW)", drift.added_columns),
    ):
        if columns:
            lines += [f"{label}: {', '.join(column_text(c) for c in columns)}", ""]
    if not drift.rows:
        lines += ["no row changed", ""]
    lines.append(summary_line(drift))
    return "\n".join(lines)


def summary_line(drift: Drift) -> str:
    """Counts of each kind of change and the verdict."""
    parts = [
        f"{drift.count(kind)} {label}"
        for kind, label in ((NEW_FAILURE, "new failure"), (FIXED, "fixed"), (DRIFT, "drift"))
    ]
    parts.append(f"{drift.count(STILL_FAILING) + drift.failing_in_both} failing in both")
    vanished, added = _rows_text(drift.vanished_rows), _rows_text(drift.added_rows)
    verdict = "nothing left the valid set" if drift.ok else "NEW FAILURES"
    return (
        f"{_rows_text(drift.compared)} in both: {', '.join(parts)}; {vanished} only in OLD, {added} only "
        f"in NEW — {verdict}"
    )


def _rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _cases_by_area(drift: Drift, cases: list[str], sizes: Mapping[str, int]) -> list[str]:
    """``  kink: kink_a, kink_b`` per area, or ``  elementwise: all 31`` when the area went whole."""
    grouped: dict[str, list[str]] = {}
    for case in cases:
        grouped.setdefault(drift.areas[case], []).append(case)
    return [
        f"  {area}: all {len(names)}" if len(names) == sizes[area] > 1 else f"  {area}: {', '.join(names)}"
        for area, names in grouped.items()
    ]
