"""The catalogue: every case of every area module, in a stable order.

Example:
    >>> from unigrad.conformance.cases import CASES
    >>> len({case.name for case in CASES}) == len(CASES)
    True
"""

from __future__ import annotations

from unigrad.conformance.case import Case
from unigrad.conformance.cases import (
    complex,
    elementwise,
    indexing,
    kinks,
    linalg,
    losses,
    models,
    pytrees,
    reductions,
)

_AREAS = (elementwise, kinks, reductions, linalg, indexing, losses, models, pytrees, complex)

CASES: list[Case] = [case for area in _AREAS for case in area.CASES]

_names = [case.name for case in CASES]
_duplicates = sorted({name for name in _names if _names.count(name) > 1})
if _duplicates:
    raise RuntimeError(f"duplicate conformance case names: {_duplicates}")
