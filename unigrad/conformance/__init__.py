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
from unigrad.conformance.transforms import (
    TRANSFORM_CASES,
    TransformCase,
    run_transform_case,
    select_transform_cases,
)

#: Every case name in the catalogue: gradient cases, then transform cases.
ALL_CASE_NAMES: list[str] = [case.name for case in CASES] + [case.name for case in TRANSFORM_CASES]

__all__ = [
    "ALL_CASE_NAMES",
    "ALL_DTYPES",
    "CASES",
    "DEFAULT_TOLERANCES",
    "TRANSFORM_CASES",
    "Case",
    "Comparison",
    "KnownDifference",
    "LeafMetrics",
    "Report",
    "Tolerance",
    "TransformCase",
    "run_case",
    "run_conformance",
    "run_transform_case",
    "select_cases",
    "select_transform_cases",
    "tolerance_for",
]
