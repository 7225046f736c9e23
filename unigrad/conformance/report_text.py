"""Plain-text descriptions of comparisons, for assertion messages and the console.

Example:
    >>> from unigrad.conformance.results import Comparison, LeafMetrics
    >>> bad = Comparison("c", "reference", "torch", "cpu", "float32", "finite differences", "fail",
    ...                  1e-4, 1e-5, [LeafMetrics("params['w']", 0.5, 0.25, False, (1,), 2.5, 2.0)])
    >>> print(describe_failures([bad]))
    c: torch/cpu/float32 vs finite differences (reference) fail
      params['w'][1]: got 2.5, want 2, abs err 0.5, rel err 0.25 (rtol 0.0001, atol 1e-05)
"""

from __future__ import annotations

from collections.abc import Iterable

from unigrad.conformance.results import Comparison


def describe_comparison(comparison: Comparison) -> str:
    """Several lines: what was compared, the status, and each failing leaf's worst element."""
    c = comparison
    head = f"{c.case}: {c.backend}/{c.device}/{c.dtype} vs {c.against} ({c.kind}) {c.status}"
    if c.reason:
        head += f": {c.reason}"
    lines = [head]
    for leaf in c.leaves:
        if leaf.passed:
            continue
        index = "".join(f"[{i}]" for i in leaf.worst_index)
        lines.append(
            f"  {leaf.path}{index}: got {leaf.got:.6g}, want {leaf.want:.6g}, "
            f"abs err {leaf.max_abs_err:.3g}, rel err {leaf.max_rel_err:.3g} "
            f"(rtol {c.rtol:g}, atol {c.atol:g})"
        )
    return "\n".join(lines)


def describe_failures(comparisons: Iterable[Comparison]) -> str:
    """All comparisons described, one block each."""
    return "\n".join(describe_comparison(c) for c in comparisons)
