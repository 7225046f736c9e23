"""Op table rows: elementwise functions of the standard and the elementwise extras, with special points.

Special points state the gradient of ``sum(op(x))`` (weights one) at domain edges (``sqrt``, ``log`` at
0: the one-sided limit, +inf), at kinks (``abs``, ``relu``, ties of ``maximum``, the bounds of
``clip``: the subdifferential), at jumps (``floor``... at integers: 0, the derivative on either side)
and at ±inf, where a saturating function's derivative is its limit (``tanh'(±inf) = 0``).

Example:
    >>> from unigrad.conformance.ops.rows_elementwise import ROWS
    >>> next(row for row in ROWS if row.name == "sqrt").special[0].label
    'at_zero'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from unigrad.conformance.case import KnownDifference, Tolerance
from unigrad.conformance.ops import valid
from unigrad.conformance.ops.domains import (
    ABOVE_ONE,
    BETWEEN_DISTINCT,
    COMPLEX,
    DISTINCT,
    FRACTIONAL,
    NONZERO,
    POSITIVE,
    REAL,
    SMALL,
    TAN,
    UNIT,
)
from unigrad.conformance.ops.table import FLOAT_DTYPES, Op, Special, binary, unary, values
from unigrad.conformance.subgradients import interval

_INF = np.inf
_SATURATING = values(_INF, -_INF, 0.0)


def _limit(label: str, points: np.ndarray, derivative: Any, what: str) -> Special:
    """The derivative's value (a limit at ±inf, a one-sided limit at an edge), stated for one input."""
    return Special(label, (points,), lambda x: (derivative(x),), what)


def _saturating(at_zero: float, name: str) -> Special:
    return _limit(
        "at_inf", _SATURATING, lambda x: np.where(np.isinf(x), 0.0, at_zero),
        f"{name}'(±inf) = 0, the limit of the derivative",
    )  # fmt: skip


def _edge(
    points: tuple[float, ...], derivative: Any, name: str, label: str = "at_zero", limit: str = "+inf"
) -> Special:
    """At ``points[0]``, an edge of the domain, the derivative is its one-sided limit ``limit``."""
    return _limit(
        label, values(*points), derivative, f"{name}'({points[0]:g}) = {limit}, the one-sided limit"
    )


_JUMP = Special(
    "at_integers",
    (values(0.0, 1.0, -2.0, 2.5, -0.5),),
    lambda x: (np.zeros_like(x),),
    "0 at the jumps (the derivative on either side; the function has none there)",
)
_ZERO_DERIVATIVE = {"jvp": False, "hvp": False}

# Differences found by these rows (measured on the pinned versions: torch 2.13, TensorFlow 2.21,
# JAX 0.10.2, MLX 0.32.4, CPU).
_HYPOT_NAN = KnownDifference(
    ("torch", "mlx"),
    "hypot at (0, 0): x / hypot(x, y) is evaluated as 0 / 0 = nan (torch 2.13: torch.hypot's rule; "
    "MLX 0.32: unigrad's scaled hypot); TensorFlow gives 0, JAX 0.5 (both valid)",
)
_JAX_LOGADDEXP_INF = KnownDifference(
    ("jax",),
    "JAX 0.10.2: d/dy logaddexp(inf, y) at y = 1 is e = 2.718 (the limit, and every other framework: 0); "
    "jnp.logaddexp's rule at an infinite argument",
)
_TF_ERF_INF = KnownDifference(
    ("tensorflow",),
    "TensorFlow 2.21 (CPU): tf.math.erf(±inf) is nan in float64 (float32: ±1), so the float64 loss is nan "
    "and "
    "the float32 column, compared with it, differs too; the gradient is right (0)",
)
_MLX_ERF = (
    "MLX 0.32 computes float64 erf with a float32 approximation (ml-explore/mlx issue #3047): its jvp "
    "outputs are off by up to 4.5e-6 relative (PyTorch, JAX, TensorFlow: the finite-difference floor)"
)
_PIECEWISE_LINEAR = {"hvp": False}


def _softplus_derivative(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _clip(xp: Any, x: Any) -> Any:
    return xp.clip(x, -1.0, 1.0)


def _where(xp: Any, x: Any, y: Any) -> Any:
    return xp.where(x > 0, x, y)


def _copysign_grad(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.sign(x) * np.where(np.signbit(y), -1.0, 1.0), np.zeros_like(y)


def _split_at_ties(name: str, larger: bool) -> Op:
    """maximum or minimum: x from DISTINCT and y between its values, never a tie (not even rounded to
    bfloat16), and the ties as the special point, where the gradient is split 1/2 and 1/2."""
    wins = np.greater if larger else np.less
    return binary(
        name,
        (DISTINCT, BETWEEN_DISTINCT),
        special=(
            Special(
                "ties",
                (values(0.0, 1.0, -1.0, 2.0), values(0.0, 1.0, 0.0, 3.0)),
                lambda x, y: (np.where(x == y, 0.5, wins(x, y)), np.where(x == y, 0.5, wins(y, x))),
                f"{name}(x, y) at x == y: the gradient is split 1/2 and 1/2",
                lambda x, y: valid.tie_split(x, y, larger=larger),
            ),
        ),
        **_PIECEWISE_LINEAR,
    )


ROWS: list[Op] = [
    unary(
        "abs",
        special=(
            Special(
                "at_zero",
                (values(0.0, 0.0, 1.5, -1.5),),
                lambda x: (np.sign(x),),
                "abs'(0) = 0 (sign(0), the minimal-norm subgradient)",
                valid.symmetric_kink,
            ),
            _limit("at_inf", values(_INF, -_INF), np.sign, "abs'(±inf) = ±1"),
        ),
        **_PIECEWISE_LINEAR,
    ),
    unary(
        "acos",
        UNIT,
        special=(_edge((1.0, 0.5, -0.5), lambda x: -1 / np.sqrt(1 - x * x), "acos", "at_one", "-inf"),),
    ),
    unary(
        "acosh",
        ABOVE_ONE,
        special=(_edge((1.0, 2.0, 4.0), lambda x: 1 / np.sqrt(x * x - 1), "acosh", "at_one"),),
    ),
    binary("add", **_PIECEWISE_LINEAR),
    unary(
        "asin",
        UNIT,
        special=(_edge((-1.0, 0.0, 0.5), lambda x: 1 / np.sqrt(1 - x * x), "asin", "at_minus_one"),),
    ),
    unary("asinh", special=(_saturating(1.0, "asinh"),)),
    unary("atan", special=(_saturating(1.0, "atan"),)),
    binary("atan2", (REAL, NONZERO)),
    unary(
        "atanh", UNIT, special=(_edge((-1.0, 0.0, 0.5), lambda x: 1 / (1 - x * x), "atanh", "at_minus_one"),)
    ),
    unary("ceil", FRACTIONAL, special=(_JUMP,), **_ZERO_DERIVATIVE),
    unary(
        "clip",
        fn=_clip,
        special=(
            Special(
                "at_bounds",
                (values(-1.0, 1.0, 0.5, 2.0, -2.0),),
                lambda x: ((np.abs(x) <= 1).astype(float),),
                "clip(x, lo, hi)'(lo) = clip'(hi) = 1 (the bound is inside the range)",
                lambda x: (interval(np.abs(x) < 1, np.abs(x) <= 1),),
            ),
        ),
        **_PIECEWISE_LINEAR,
    ),
    unary("conj", COMPLEX, dtypes=FLOAT_DTYPES, **_PIECEWISE_LINEAR),
    binary(
        "copysign",
        (NONZERO, NONZERO),
        special=(
            Special(
                "at_signed_zero",
                (values(1.5, -1.5, 2.0), values(0.0, -0.0, -0.0)),
                _copysign_grad,
                "d/dx copysign(x, ±0) = sign(x)·(±1): the sign bit of zero counts; d/dy = 0",
            ),
        ),
        **_PIECEWISE_LINEAR,
    ),
    unary("cos"),
    unary("cosh", SMALL),
    binary(
        "divide",
        (REAL, NONZERO),
        special=(
            Special(
                "at_zero_divisor",
                (values(1.0, 2.0), values(0.0, 0.0)),
                lambda x, y: (np.full_like(x, _INF), np.full_like(y, -_INF)),
                "x / +0 with x > 0: d/dx = +inf, d/dy = -inf (the limits from the positive side)",
            ),
        ),
    ),
    unary(
        "exp",
        SMALL,
        special=(_limit("at_inf", values(-_INF, _INF, 0.0), np.exp, "exp'(-inf) = 0, exp'(inf) = inf"),),
    ),
    unary("expm1", SMALL, special=(_limit("at_inf", values(-_INF, 0.0), np.exp, "expm1'(-inf) = 0"),)),
    unary("floor", FRACTIONAL, special=(_JUMP,), **_ZERO_DERIVATIVE),
    binary(
        "hypot",
        (NONZERO, NONZERO),
        special=(
            Special(
                "at_origin",
                (values(0.0, 3.0), values(0.0, 4.0)),
                lambda x, y: (
                    np.where(x == 0, 0.0, x / np.hypot(x, y)),
                    np.where(y == 0, 0.0, y / np.hypot(x, y)),
                ),
                "hypot at (0, 0): gradient (0, 0), the minimal-norm element of the unit disc",
                valid.unit_ball_at_zero,
                known=(_HYPOT_NAN,),
            ),
        ),
    ),
    unary("imag", COMPLEX, dtypes=FLOAT_DTYPES, **_PIECEWISE_LINEAR),
    unary("log", POSITIVE, special=(_edge((0.0, 1.0, 4.0), lambda x: 1 / x, "log"),)),
    unary(
        "log1p", POSITIVE, special=(_edge((-1.0, 0.0, 2.0), lambda x: 1 / (1 + x), "log1p", "at_minus_one"),)
    ),
    unary("log2", POSITIVE, special=(_edge((0.0, 1.0, 4.0), lambda x: 1 / (x * math.log(2)), "log2"),)),
    unary("log10", POSITIVE, special=(_edge((0.0, 1.0, 4.0), lambda x: 1 / (x * math.log(10)), "log10"),)),
    binary(
        "logaddexp",
        special=(
            Special(
                "at_inf",
                (values(-_INF, 0.0, _INF), values(0.0, -_INF, 1.0)),
                lambda x, y: ((x > y).astype(float), (y > x).astype(float)),
                "logaddexp(x, y) at an infinite x or y: the limits, 0 for the -inf side (1 for the other); "
                "1 for an inf side, 0 for the finite one",
                known=(_JAX_LOGADDEXP_INF,),
            ),
        ),
    ),
    _split_at_ties("maximum", larger=True),
    _split_at_ties("minimum", larger=False),
    binary("multiply"),
    unary("negative", **_PIECEWISE_LINEAR),
    unary("positive", **_PIECEWISE_LINEAR),
    binary(
        "pow",
        (POSITIVE, REAL),
        special=(
            Special(
                "zero_base",
                (values(0.0, 1.0, 2.0), values(2.0, 2.0, 2.0)),
                lambda x, y: (y * x ** (y - 1), np.where(x == 0, 0.0, x**y * np.log(np.where(x == 0, 1, x)))),
                "d/dy 0^y = 0 for y > 0 (the limit of x^y·log x; no nan from log 0)",
            ),
        ),
    ),
    unary("real", COMPLEX, dtypes=FLOAT_DTYPES, **_PIECEWISE_LINEAR),
    unary(
        "reciprocal",
        NONZERO,
        special=(_edge((0.0, 1.0, 4.0), lambda x: -1 / (x * x), "reciprocal", limit="-inf"),),
    ),
    binary(
        "remainder", (FRACTIONAL, POSITIVE), fn=lambda xp, x, y: xp.remainder(x, y + 3.0), **_PIECEWISE_LINEAR
    ),
    unary("round", FRACTIONAL, special=(_JUMP,), **_ZERO_DERIVATIVE),
    unary(
        "sign",
        NONZERO,
        special=(
            Special(
                "at_zero", (values(0.0, 0.5, -0.5),), lambda x: (np.zeros_like(x),), "sign'(x) = 0, at 0 too"
            ),
        ),
        **_ZERO_DERIVATIVE,
    ),
    unary("sin"),
    unary("sinh", SMALL),
    unary(
        "sqrt",
        POSITIVE,
        special=(
            _edge((0.0, 1.0, 4.0), lambda x: 0.5 / np.sqrt(x), "sqrt"),
            _limit("at_inf", values(_INF, 1.0), lambda x: 0.5 / np.sqrt(x), "sqrt'(inf) = 0"),
        ),
    ),
    unary("square"),
    binary("subtract", **_PIECEWISE_LINEAR),
    unary("tan", TAN),
    unary("tanh", special=(_saturating(1.0, "tanh"),)),
    unary("trunc", FRACTIONAL, special=(_JUMP,), **_ZERO_DERIVATIVE),
    binary(
        "where",
        fn=_where,
        special=(
            Special(
                "nan_untaken",
                (values(np.nan, 1.0), values(2.0, np.nan)),
                lambda x, y: (values(0.0, 1.0), values(1.0, 0.0)),
                "where(c, x, y): the untaken operand gets 0, even where its value is nan",
            ),
        ),
        **_PIECEWISE_LINEAR,
    ),
    # Extras (outside the standard): unigrad._namespace._extras.
    unary(
        "erf",
        special=(dataclasses.replace(_saturating(2 / math.sqrt(math.pi), "erf"), known=(_TF_ERF_INF,)),),
        tolerances={"float64": Tolerance(1e-5, 1e-8)},
        tolerance_reason=_MLX_ERF,
    ),
    unary(
        "relu",
        NONZERO,
        special=(
            Special(
                "at_zero",
                (values(0.0, 0.0, 1.5, -1.5),),
                lambda x: ((x > 0).astype(float),),
                "relu'(0) = 0",
                valid.ramp_kink,
            ),
            _limit(
                "at_inf",
                values(_INF, -_INF),
                lambda x: (x > 0).astype(float),
                "relu'(inf) = 1, relu'(-inf) = 0",
            ),
        ),
        **_PIECEWISE_LINEAR,
    ),
    unary(
        "rsqrt",
        POSITIVE,
        special=(
            _edge((0.0, 1.0, 4.0), lambda x: -0.5 * x**-1.5, "rsqrt", limit="-inf"),
            _limit("at_inf", values(_INF, 1.0), lambda x: -0.5 * x**-1.5, "rsqrt'(inf) = 0"),
        ),
    ),
    unary("sigmoid", special=(_saturating(0.25, "sigmoid"),)),
    unary(
        "softplus",
        special=(
            _limit("at_inf", _SATURATING, _softplus_derivative, "softplus'(inf) = 1, softplus'(-inf) = 0"),
        ),
    ),
]
