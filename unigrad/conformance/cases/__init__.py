"""The catalogue: every case of every area module, in a stable order.

Example:
    >>> from unigrad.conformance.cases import CASES
    >>> len({case.name for case in CASES}) == len(CASES)
    True
"""

from __future__ import annotations

import dataclasses

from unigrad.conformance import ops
from unigrad.conformance.case import Case
from unigrad.conformance.cases import (
    complex,
    elementwise,
    indexing,
    kinks,
    linalg,
    losses,
    mlx_differences,
    models,
    pytrees,
    reductions,
)

# ops: the op-level cases generated from one table (unigrad.conformance.ops), tagged op.
_AREAS = (elementwise, kinks, reductions, linalg, indexing, losses, models, pytrees, complex, ops)
#: Modules declaring one backend's differences by case name (``DIFFERENCES``), kept out of the areas.
_BACKEND_DIFFERENCES = (mlx_differences,)

CASES: list[Case] = [case for area in _AREAS for case in area.CASES]

for _module in _BACKEND_DIFFERENCES:
    _unknown = sorted(set(_module.DIFFERENCES) - {case.name for case in CASES})
    if _unknown:
        raise RuntimeError(f"{_module.__name__} declares differences for unknown cases {_unknown}")
    CASES = [
        dataclasses.replace(case, known_differences=case.known_differences + _module.DIFFERENCES[case.name])
        if case.name in _module.DIFFERENCES
        else case
        for case in CASES
    ]

_names = [case.name for case in CASES]
_duplicates = sorted({name for name in _names if _names.count(name) > 1})
if _duplicates:
    raise RuntimeError(f"duplicate conformance case names: {_duplicates}")
