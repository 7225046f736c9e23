"""Op table rows: creation functions and predicates, the guaranteed names with no gradient of their own.

``NOT_DIFFERENTIABLE`` names (``zeros``, ``eye``, ``equal``, ``argmax``...) have no derivative, but a
loss uses them: to build constants, masks and indices that shape another gradient. Each row here puts
the function where a loss would (``x * eye(n)``, ``where(less(x, y), x, y)``, ``x[argmax(x)]``), so
its case checks that the values agree across backends and that the gradient flows around it as it
should (through the selected elements, never through the predicate). ``tril``/``triu`` and
``meshgrid`` are creation functions that do differentiate.

Example:
    >>> from unigrad.conformance.ops.rows_select import ROWS
    >>> {row.family for row in ROWS} == {"creation", "predicate"}
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad.conformance.ops.domains import DISTINCT, NONZERO, REAL
from unigrad.conformance.ops.table import Op, Special, samples, values

_MATRIX = samples(((3, 4),))
_PAIR = samples(((3, 4), (3, 4)))
_SELECT = {"jvp": False, "hvp": False}  # a selection: forward mode and the Hessian say nothing new


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(size) for size in x.shape)


def _creation(name: str, fn: Any, shapes: tuple[tuple[int, ...], ...] = ((3, 4),), **options: Any) -> Op:
    return Op(name, "creation", fn, (REAL,) * len(shapes), samples(shapes), hvp=False, **options)


def _predicate(name: str, fn: Any, domains: tuple[Any, ...] = (DISTINCT,), **options: Any) -> Op:
    options.setdefault("samples", _MATRIX if len(domains) == 1 else _PAIR)
    return Op(name, "predicate", fn, domains, **_SELECT, **options)


def _compare(name: str) -> Op:
    return _predicate(name, lambda xp, x, y: xp.where(getattr(xp, name)(x, y), x, y * 2.0), (REAL, REAL))


def _logical(name: str) -> Op:
    def fn(xp: Any, x: Any, y: Any) -> Any:
        return xp.where(getattr(xp, name)(x > 0, y > 0), x, y * 2.0)

    return _predicate(name, fn, (NONZERO, NONZERO))


def _at(xp: Any, x: Any, index: Any) -> Any:
    return xp.take_along_axis(x, index, axis=1)


_ARGMAX_TIES = Special(
    "ties",
    (np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]),),
    lambda x: (np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),),
    "argmax at a tie returns the first index (the standard), so the first tied element gets the gradient",
)
_NAN_TO_ZERO = Special(
    "at_inf_nan",
    (values(np.inf, -np.inf, np.nan, 1.5),),
    lambda x: (values(0.0, 0.0, 0.0, 1.0),),
    "where(isfinite(x), x, 0): 0 at ±inf and nan (the selected constant), 1 elsewhere",
)

ROWS: list[Op] = [
    _creation("asarray", lambda xp, x: xp.asarray(x) * 2.0),
    _creation("zeros", lambda xp, x: x + xp.zeros(_shape(x), dtype=x.dtype)),
    _creation("ones", lambda xp, x: x * xp.ones(_shape(x), dtype=x.dtype)),
    _creation("zeros_like", lambda xp, x: x**2 + xp.zeros_like(x)),
    _creation("ones_like", lambda xp, x: x * xp.ones_like(x)),
    _creation("full", lambda xp, x: x * xp.full(_shape(x), 2.5, dtype=x.dtype)),
    _creation("full_like", lambda xp, x: x * xp.full_like(x, 2.5)),
    _creation("eye", lambda xp, x: x * xp.eye(4, dtype=x.dtype), ((4, 4),)),
    _creation("arange", lambda xp, x: x * xp.arange(4, dtype=x.dtype)),
    _creation("linspace", lambda xp, x: x * xp.linspace(-1.0, 1.0, 4, dtype=x.dtype)),
    _creation("meshgrid", lambda xp, x, y: xp.meshgrid(x, y), ((3,), (2,))),
    _creation("tril", lambda xp, x: xp.tril(x, k=-1), ((4, 4),)),
    _creation("triu", lambda xp, x: xp.triu(x), ((4, 4),)),
    _creation("astype", lambda xp, x: xp.astype(x * 2.0, x.dtype)),
    *(_compare(name) for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")),
    *(_logical(name) for name in ("logical_and", "logical_or", "logical_xor")),
    _predicate("logical_not", lambda xp, x: xp.where(xp.logical_not(x > 0), x, x * 2.0), (NONZERO,)),
    _predicate(
        "isfinite",
        lambda xp, x: xp.where(xp.isfinite(x), x, xp.zeros_like(x)),
        (REAL,),
        special=(_NAN_TO_ZERO,),
    ),
    _predicate("isinf", lambda xp, x: xp.where(xp.isinf(x), xp.zeros_like(x), x * 2.0), (REAL,)),
    _predicate("isnan", lambda xp, x: xp.where(xp.isnan(x), xp.zeros_like(x), x * 2.0), (REAL,)),
    _predicate("signbit", lambda xp, x: xp.where(xp.signbit(x), -x, x), (NONZERO,)),
    _predicate("all", lambda xp, x: xp.where(xp.all(x > -1.0, axis=1, keepdims=True), x, x * 2.0), (REAL,)),
    _predicate("any", lambda xp, x: xp.where(xp.any(x > 1.0, axis=1, keepdims=True), x, x * 2.0), (REAL,)),
    _predicate(
        "argmax", lambda xp, x: _at(xp, x, xp.argmax(x, axis=1, keepdims=True)), special=(_ARGMAX_TIES,)
    ),
    _predicate("argmin", lambda xp, x: _at(xp, x, xp.argmin(x, axis=1, keepdims=True))),
    _predicate("argsort", lambda xp, x: _at(xp, x, xp.argsort(x, axis=1))),
]
