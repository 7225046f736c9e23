"""Reductions over all axes, one axis and several axes (no ties here: see ``kinks``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case, Tolerance


def _matrix(rng: np.random.Generator, low: float = -2.0, high: float = 2.0) -> tuple[Any, Any]:
    return {"x": rng.uniform(low, high, size=(4, 5))}, {"w": rng.uniform(0.5, 1.5, size=(4, 5))}


def _case(name: str, loss: Callable[[Any, Any], Any], inputs=_matrix, **options: Any) -> Case:
    return Case(f"reduce_{name}", ("reduction",), loss, inputs, **options)


def _sum(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(p["x"] * d["w"])


def _sum_axes(p: Any, d: Any) -> Any:
    xp = namespace(p)
    per_row = xp.sum(p["x"] ** 2, axis=1)
    kept = xp.sum(xp.sin(p["x"]), axis=(0, 1), keepdims=True)
    return xp.sum(per_row * xp.sum(d["w"], axis=1)) + xp.sum(kept)


def _mean(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.mean(xp.exp(p["x"]) * d["w"]) + xp.sum(xp.mean(p["x"], axis=0) ** 2)


def _prod(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.prod(p["x"], axis=1))


def _prod_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.uniform(0.5, 1.5, size=(4, 5)) * np.where(rng.random((4, 5)) < 0.3, -1.0, 1.0)
    return {"x": x}, None


def _var(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.var(p["x"], axis=1) * xp.sum(d["w"], axis=1)) + xp.var(p["x"])


def _var_unbiased(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.var(p["x"], axis=0, correction=1))


def _std(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.std(p["x"], axis=1)) + xp.std(p["x"], correction=1)


def _max(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.max(p["x"], axis=1) * d["w"][:, 0]) + xp.max(p["x"])


def _min(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.min(p["x"], axis=0, keepdims=True) ** 2) + xp.min(p["x"])


def _logsumexp(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.logsumexp(p["x"] * 3.0, axis=1) * d["w"][:, 0]) + xp.logsumexp(p["x"])


def _logsumexp_large(p: Any, d: Any) -> Any:
    xp = namespace(p)
    # Values near 80: exp overflows in float32 without the max-shift every backend must apply.
    return xp.sum(xp.logsumexp(p["x"], axis=1))


def _large_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.uniform(78.0, 82.0, size=(4, 5))}, None


def _cumulative_sum(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.cumulative_sum(p["x"], axis=1) * d["w"])


def _vector_norm(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.linalg.vector_norm(p["x"], axis=1)) + xp.linalg.vector_norm(p["x"], ord=1)


def _away_from_zero(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.uniform(0.2, 2.0, size=(4, 5)) * np.where(rng.random((4, 5)) < 0.5, -1.0, 1.0)
    return {"x": x}, None


def _softmax(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.softmax(p["x"], axis=1) * d["w"])


def _log_softmax(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.log_softmax(p["x"], axis=0) * d["w"])


def _distinct_max(rng: np.random.Generator) -> tuple[Any, Any]:
    # A permutation of spread values: no two elements tie anywhere (ties live in ``kinks``).
    x = rng.permutation(np.linspace(-2.0, 2.0, 20)).reshape(4, 5)
    return {"x": x}, {"w": rng.uniform(0.5, 1.5, size=(4, 5))}


_CUMSUM_REASON = "a running sum of 5 terms accumulates float16/bfloat16 rounding in later outputs"

CASES: list[Case] = [
    _case("sum", _sum),
    _case("sum_axes_keepdims", _sum_axes),
    _case("mean", _mean),
    _case("prod", _prod, _prod_inputs),
    _case("var", _var),
    _case("var_unbiased", _var_unbiased),
    _case("std", _std),
    _case("max", _max, _distinct_max),
    _case("min", _min, _distinct_max),
    _case("logsumexp", _logsumexp),
    _case("logsumexp_large_values", _logsumexp_large, _large_inputs, dtypes=("float64", "float32")),
    _case(
        "cumulative_sum",
        _cumulative_sum,
        tolerances={"bfloat16": Tolerance(2e-1, 2e-1)},
        tolerance_reason=_CUMSUM_REASON,
    ),
    _case("vector_norm", _vector_norm, _away_from_zero),
    _case("softmax", _softmax),
    _case("log_softmax", _log_softmax),
]
