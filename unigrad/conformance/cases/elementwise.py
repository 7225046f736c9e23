"""Elementwise functions and broadcasting binary ops, at points inside their domains.

Each unary case differentiates ``sum(w * f(x))`` with random positive weights ``w`` (data), so the
gradient ``w * f'(x)`` is different at every element.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import ALL_DTYPES, Case, Tolerance

SHAPE = (3, 4)


def _unary(
    fn: str, low: float, high: float, *, symmetric_gap: float = 0.0, dtypes: tuple[str, ...] = ALL_DTYPES,
    tolerances: dict[str, Tolerance] | None = None, tolerance_reason: str = "",
) -> Case:  # fmt: skip
    def loss(p: Any, d: Any) -> Any:
        xp = namespace(p)
        return xp.sum(getattr(xp, fn)(p["x"]) * d["w"])

    def inputs(rng: np.random.Generator) -> tuple[Any, Any]:
        x = rng.uniform(low, high, size=SHAPE)
        if symmetric_gap:  # keep |x| >= gap: away from a kink or pole at zero
            x = np.sign(x) * (symmetric_gap + np.abs(x))
        return {"x": x}, {"w": rng.uniform(0.5, 1.5, size=SHAPE)}

    return Case(
        name=f"elementwise_{fn}",
        tags=("elementwise", "unary"),
        loss=loss,
        inputs=inputs,
        dtypes=dtypes,
        tolerances=tolerances or {},
        tolerance_reason=tolerance_reason,
    )


UNARY = [
    _unary("exp", -2.0, 2.0),
    _unary("log", 0.2, 3.0),
    _unary("log1p", -0.5, 2.0),
    _unary("expm1", -2.0, 2.0),
    _unary("sqrt", 0.2, 4.0),
    _unary("rsqrt", 0.3, 4.0),
    _unary("tanh", -3.0, 3.0),
    _unary("sigmoid", -4.0, 4.0),
    _unary("softplus", -4.0, 4.0),
    _unary("relu", -2.0, 2.0, symmetric_gap=0.05),
    _unary("sin", -3.0, 3.0),
    _unary("cos", -3.0, 3.0),
    _unary("tan", -1.2, 1.2),
    _unary("sinh", -2.0, 2.0),
    _unary("cosh", -2.0, 2.0),
    _unary("atan", -3.0, 3.0),
    _unary("erf", -2.0, 2.0),
    _unary("square", -2.0, 2.0),
    _unary("abs", -2.0, 2.0, symmetric_gap=0.05),
    _unary("negative", -2.0, 2.0),
    _unary("floor", 0.1, 0.9),  # piecewise constant: zero gradient away from integers
]

#: float64 bound for the unary transcendental cases, whose finite-difference reference is accurate to
#: ~1e-9 (measured at most 3e-9 on PyTorch and JAX): tight enough that a float64 kernel computed
#: at float32 accuracy (~1e-7, as MLX's exp and sin are) fails instead of hiding under 1e-6.
PRECISE_FLOAT64 = Tolerance(rtol=1e-8, atol=1e-10)
_PRECISE = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh", "sigmoid", "softplus", "sin", "cos")
_PRECISE += ("tan", "sinh", "atan", "erf")
UNARY = [
    dataclasses.replace(
        case,
        tolerances={"float64": PRECISE_FLOAT64},
        tolerance_reason="one smooth op, whose float64 finite differences are accurate to ~1e-9: "
        "float64 is held to rtol 1e-8 so that float32-accurate float64 kernels are found",
    )
    if case.name.removeprefix("elementwise_") in _PRECISE and not case.tolerances
    else case
    for case in UNARY
]


def _binary_inputs(shape_x: tuple[int, ...], shape_y: tuple[int, ...], low: float, high: float):
    def inputs(rng: np.random.Generator) -> tuple[Any, Any]:
        return {"x": rng.uniform(low, high, size=shape_x), "y": rng.uniform(low, high, size=shape_y)}, None

    return inputs


def _loss_atan2(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.atan2(p["x"], p["y"]))


def _inputs_atan2(rng: np.random.Generator) -> tuple[Any, Any]:
    # Points on an annulus around the origin, away from the branch cut's discontinuity (y < 0, x = 0).
    angle = rng.uniform(-2.5, 2.5, size=SHAPE)
    radius = rng.uniform(0.5, 2.0, size=SHAPE)
    return {"x": radius * np.sin(angle), "y": radius * np.cos(angle)}, None


def _loss_pow(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.pow(p["x"], p["y"]))


def _loss_pow_negative_base(p: Any, d: Any) -> Any:
    xp = namespace(p)
    # A negative base with an integer-valued exponent is real: d/dx x^3 = 3x^2 for x < 0.
    return xp.sum(xp.pow(p["x"], d["k"]) * d["w"])


def _inputs_pow_negative_base(rng: np.random.Generator) -> tuple[Any, Any]:
    x = -rng.uniform(0.3, 2.0, size=SHAPE)
    return {"x": x}, {"k": np.full(SHAPE, 3.0), "w": rng.uniform(0.5, 1.5, size=SHAPE)}


def _loss_python_power(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(p["x"] ** 3 - 2.0 * p["x"] ** 2 + 0.5 / p["y"])


def _loss_broadcast(p: Any, d: Any) -> Any:
    xp = namespace(p)
    # (3, 1) against (1, 4) and (4,): each gradient sums over the broadcast axes.
    return xp.sum(xp.tanh(p["col"] * p["row"] + p["vec"]) * d["w"])


def _inputs_broadcast(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "col": rng.normal(size=(3, 1)),
        "row": rng.normal(size=(1, 4)),
        "vec": rng.normal(size=(4,)),
    }
    return params, {"w": rng.uniform(0.5, 1.5, size=(3, 4))}


def _loss_divide(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(p["x"] / p["y"])


def _loss_maximum(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.maximum(p["x"], p["y"]) * d["w"] + xp.minimum(p["x"], p["y"]))


def _inputs_no_ties(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.normal(size=SHAPE)
    y = x + np.where(rng.random(SHAPE) < 0.5, -1.0, 1.0) * rng.uniform(0.1, 1.0, size=SHAPE)
    return {"x": x, "y": y}, {"w": rng.uniform(0.5, 1.5, size=SHAPE)}


def _loss_where(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.where(d["mask"] > 0.5, xp.exp(p["x"]), p["x"] ** 2))


def _inputs_where(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=SHAPE)}, {"mask": (rng.random(SHAPE) < 0.5).astype(np.float64)}


def _loss_clip(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.clip(p["x"], -1.0, 1.0) * d["w"])


def _inputs_clip(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.uniform(-2.0, 2.0, size=SHAPE)
    x = np.where(np.abs(np.abs(x) - 1.0) < 0.05, x * 0.5, x)  # nothing at the bounds
    return {"x": x}, {"w": rng.uniform(0.5, 1.5, size=SHAPE)}


def _loss_logaddexp(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.logaddexp(p["x"], p["y"]))


BINARY = [
    Case("elementwise_atan2", ("elementwise", "binary"), _loss_atan2, _inputs_atan2),
    Case("elementwise_pow", ("elementwise", "binary"), _loss_pow, _binary_inputs(SHAPE, SHAPE, 0.5, 2.0)),
    Case(
        "elementwise_pow_negative_base",
        ("elementwise", "binary"),
        _loss_pow_negative_base,
        _inputs_pow_negative_base,
    ),
    Case(
        "elementwise_python_power",
        ("elementwise", "binary"),
        _loss_python_power,
        _binary_inputs(SHAPE, SHAPE, 0.5, 2.0),
    ),
    Case("elementwise_broadcast", ("elementwise", "binary", "broadcast"), _loss_broadcast, _inputs_broadcast),
    Case(
        "elementwise_divide", ("elementwise", "binary"), _loss_divide, _binary_inputs(SHAPE, SHAPE, 0.5, 2.0)
    ),
    Case("elementwise_maximum_minimum", ("elementwise", "binary"), _loss_maximum, _inputs_no_ties),
    Case("elementwise_where", ("elementwise", "select"), _loss_where, _inputs_where),
    Case("elementwise_clip", ("elementwise", "select"), _loss_clip, _inputs_clip),
    Case(
        "elementwise_logaddexp",
        ("elementwise", "binary"),
        _loss_logaddexp,
        _binary_inputs(SHAPE, SHAPE, -3.0, 3.0),
    ),
]

CASES: list[Case] = UNARY + BINARY
