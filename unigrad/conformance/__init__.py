"""The conformance suite: one catalogue of losses, run on every backend, dtype and device.

Example:
    >>> from unigrad.conformance import CASES
    >>> len(CASES) >= 80
    True
"""

from unigrad.conformance.case import ALL_DTYPES, Case, KnownDifference, Tolerance
from unigrad.conformance.cases import CASES
from unigrad.conformance.results import Comparison, LeafMetrics, Report
from unigrad.conformance.runner import run_case, run_conformance, select_cases
from unigrad.conformance.tolerances import DEFAULT_TOLERANCES, tolerance_for

__all__ = [
    "ALL_DTYPES",
    "CASES",
    "DEFAULT_TOLERANCES",
    "Case",
    "Comparison",
    "KnownDifference",
    "LeafMetrics",
    "Report",
    "Tolerance",
    "run_case",
    "run_conformance",
    "select_cases",
    "tolerance_for",
]
