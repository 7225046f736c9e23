"""Op table rows: reshaping, joining, gathering and sorting, whose gradients permute, scatter and sum.

These functions are linear (``sort`` piecewise), so no second-order cases: their Hessian is zero.
Special point: ``sort`` with ties, where any assignment of the tied outputs' cotangents to the tied
inputs is a valid gradient (a stable sort gives the first tied input the first tied output's).

Example:
    >>> from unigrad.conformance.ops.rows_manipulation import ROWS
    >>> all(not row.hvp for row in ROWS)
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad.conformance.ops.domains import DISTINCT, REAL
from unigrad.conformance.ops.table import Op, Special, samples
from unigrad.conformance.subgradients import Subdifferential, SumIs, interval


def _manipulation(name: str, fn: Any, *shapes: tuple[int, ...], **options: Any) -> Op:
    options.setdefault("samples", samples(shapes or ((3, 4),)))
    return Op(
        name, "manipulation", fn, (options.pop("domain", REAL),) * len(shapes or (0,)), hvp=False, **options
    )


def _index(xp: Any, indices: list[Any]) -> Any:
    return xp.asarray(np.array(indices, dtype=np.int64))


_SORT_TIES_X = np.array([[1.0, 1.0, 0.0, 2.0]])
_SORT_WEIGHTS = np.array([[1.0, 2.0, 3.0, 4.0]])  # sorted: [0, 1, 1, 2]; the tied 1s get weights 2 and 3
_SORT_TIES = Special(
    "ties",
    (_SORT_TIES_X,),
    lambda x: (np.array([[2.0, 3.0, 1.0, 4.0]]),),
    "sort with tied inputs: a stable sort sends the first tied input the first tied output's cotangent",
    lambda x: Subdifferential(
        {"x": interval(np.array([[2.0, 2.0, 1.0, 4.0]]), np.array([[3.0, 3.0, 1.0, 4.0]]))},
        sums=(SumIs({"x": (x == 1.0).astype(float)}, 5.0),),
    ),
    weights=(_SORT_WEIGHTS,),
)

ROWS: list[Op] = [
    _manipulation("reshape", lambda xp, x: xp.reshape(x, (2, 6))),
    _manipulation("permute_dims", lambda xp, x: xp.permute_dims(x, (2, 0, 1)), (2, 3, 4)),
    _manipulation("matrix_transpose", lambda xp, x: xp.matrix_transpose(x), (2, 3, 4)),
    _manipulation("moveaxis", lambda xp, x: xp.moveaxis(x, 0, -1), (2, 3, 4)),
    _manipulation("concat", lambda xp, x, y: xp.concat([x, y, x], axis=0), (3, 4), (1, 4)),
    _manipulation("concat", lambda xp, x, y: xp.concat([x, y], axis=None), (3, 4), (1, 4), label="flat"),
    _manipulation("stack", lambda xp, x, y: xp.stack([x, y, x], axis=1), (3, 4), (3, 4)),
    _manipulation("unstack", lambda xp, x: xp.unstack(x, axis=1), (3, 4)),
    # Repeated indices: their gradients accumulate (a scatter-add).
    _manipulation("take", lambda xp, x: xp.take(x, _index(xp, [2, 0, 2]), axis=1)),
    _manipulation("take", lambda xp, x: xp.take(x, _index(xp, [1, 1, 4])), (5,), label="vector"),
    _manipulation(
        "take_along_axis", lambda xp, x: xp.take_along_axis(x, _index(xp, [[2, 2], [0, 1], [3, 3]]), axis=1)
    ),
    _manipulation("expand_dims", lambda xp, x: xp.expand_dims(x, axis=1) * 2.0),
    _manipulation("squeeze", lambda xp, x: xp.squeeze(x, axis=1) * 2.0, (3, 1, 4)),
    _manipulation("flip", lambda xp, x: xp.flip(x, axis=1)),
    _manipulation("flip", lambda xp, x: xp.flip(x), label="all_axes"),
    _manipulation("roll", lambda xp, x: xp.roll(x, 1, axis=1)),
    _manipulation("roll", lambda xp, x: xp.roll(x, 2), label="flat"),
    _manipulation("repeat", lambda xp, x: xp.repeat(x, 2, axis=1)),
    _manipulation("tile", lambda xp, x: xp.tile(x, (2, 1))),
    _manipulation("broadcast_to", lambda xp, x: xp.broadcast_to(x, (2, 3, 4))),
    _manipulation("broadcast_arrays", lambda xp, x, y: xp.broadcast_arrays(x, y), (3, 4), (4,)),
    _manipulation("sort", lambda xp, x: xp.sort(x, axis=1), domain=DISTINCT, special=(_SORT_TIES,)),
    _manipulation(
        "sort", lambda xp, x: xp.sort(x, axis=1, descending=True), domain=DISTINCT, label="descending"
    ),
]
