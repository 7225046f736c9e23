"""Op-level conformance cases, generated from one table: a row per namespace function.

The table (:mod:`unigrad.conformance.ops.table`, rows in ``rows_*.py``) says for each guaranteed
name how to call it, where its inputs come from, which shapes and dtypes to try and its special
points with their valid gradients; :mod:`unigrad.conformance.ops.generate` turns every row into
cases: reverse mode per sample, special points, forward mode (``jvp``) and second order (``hvp``).
The catalogue (:mod:`unigrad.conformance.cases`) registers :data:`CASES`; the transform catalogue
(:mod:`unigrad.conformance.transform_cases`) registers :func:`transform_cases`. Only the first
sample of each row is in the default suite of ``unigrad check``; the rest carry the tag ``full``
(``unigrad check --suite full``).

Example:
    >>> from unigrad.conformance.ops import CASES, ROWS
    >>> len(ROWS) > 40 and all(case.name.startswith("op_") for case in CASES)
    True
"""

from __future__ import annotations

from typing import Any

from unigrad.conformance.case import Case
from unigrad.conformance.ops import (
    generate,
    rows_elementwise,
    rows_fft,
    rows_linalg,
    rows_manipulation,
    rows_reduction,
    rows_select,
)
from unigrad.conformance.ops.table import Op

#: Every row of the table, family by family (rows whose name is not guaranteed yet included).
ROWS: list[Op] = [
    *rows_select.ROWS,
    *rows_elementwise.ROWS,
    *rows_reduction.ROWS,
    *rows_manipulation.ROWS,
    *rows_linalg.ROWS,
    *rows_fft.ROWS,
]

#: The gradient cases of every row whose name is guaranteed.
CASES: list[Case] = generate.gradient_cases(ROWS)


def transform_cases() -> list[Any]:
    """The ``jvp`` and ``hvp`` cases of the table (``TransformCase`` instances, tagged ``op``)."""
    return generate.transform_cases(ROWS)
