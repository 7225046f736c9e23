"""Elementwise comparison of gradient pytrees: max abs / rel error per leaf and pass/fail.

A complex leaf is compared as its real and imaginary parts, two leaves named ``<path>.real`` and
``<path>.imag``, each with the same rule: the re/im reference, part by part.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.compare import compare_leaf
    >>> from unigrad.conformance.case import Tolerance
    >>> m = compare_leaf("params['w']", np.array([1.0, 2.001]), np.array([1.0, 2.0]), Tolerance(1e-3, 0))
    >>> m.passed, round(m.max_abs_err, 6)
    (True, 0.001)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad import _tree
from unigrad.conformance.case import Tolerance
from unigrad.conformance.results import LeafMetrics
from unigrad.conformance.tolerances import RELATIVE_ERROR_FLOOR


def compare_leaf(path: str, got: np.ndarray, want: np.ndarray, tolerance: Tolerance) -> LeafMetrics:
    """Metrics of ``got`` against ``want`` (float64 arrays of one shape)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return LeafMetrics(path, float("inf"), float("inf"), False)
    if got.size == 0:
        return LeafMetrics(path, 0.0, 0.0, True)
    close = np.isclose(got, want, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
    both_nan = np.isnan(got) & np.isnan(want)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.where(both_nan, 0.0, np.abs(got - want))
        abs_err = np.where(np.isnan(abs_err) | (~close & ~np.isfinite(abs_err)), np.inf, abs_err)
        # equal infinities give nan above; they are equal, so no error
        abs_err = np.where(np.isinf(got) & (got == want), 0.0, abs_err)
        rel_err = abs_err / (np.abs(np.where(np.isfinite(want), want, 0.0)) + RELATIVE_ERROR_FLOOR)
    worst = np.unravel_index(int(np.argmax(rel_err)), rel_err.shape)
    return LeafMetrics(
        path=path,
        max_abs_err=float(abs_err.max()),
        max_rel_err=float(rel_err.max()),
        passed=bool(close.all()),
        worst_index=tuple(int(i) for i in worst),
        got=float(got[worst]),
        want=float(want[worst]),
    )


def compare_trees(got: Any, want: Any, tolerance: Tolerance) -> list[LeafMetrics]:
    """One :class:`LeafMetrics` per leaf of two float64 (or complex128) NumPy pytrees of the same
    structure; two per complex leaf (its real and imaginary parts).

    Example:
        >>> import numpy as np
        >>> from unigrad.conformance.case import Tolerance
        >>> metrics = compare_trees({"z": np.array([1 + 2j])}, {"z": np.array([1 + 3j])}, Tolerance(0, 0))
        >>> [(m.path, m.passed) for m in metrics]
        [("params['z'].real", True), ("params['z'].imag", False)]
    """
    paths = _tree.leaf_paths(want)
    got_leaves, got_def = _tree.flatten(got)
    want_leaves, want_def = _tree.flatten(want)
    if got_def != want_def:
        return [LeafMetrics("<structure>", float("inf"), float("inf"), False)]
    metrics = []
    for path, g, w in zip(paths, got_leaves, want_leaves, strict=True):
        if np.iscomplexobj(g) or np.iscomplexobj(w):
            metrics.append(compare_leaf(f"{path}.real", np.real(g), np.real(w), tolerance))
            metrics.append(compare_leaf(f"{path}.imag", np.imag(g), np.imag(w), tolerance))
        else:
            metrics.append(compare_leaf(path, g, w, tolerance))
    return metrics
