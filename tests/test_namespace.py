"""``unigrad._namespace``: every guaranteed function matches NumPy on every backend and differentiates.

One table of cases drives both checks: each case calls one guaranteed function through the
namespace and says what plain NumPy computes for the same float64 inputs. The value test runs it on
all four backends; the gradient test differentiates a weighted sum of its output with ``ug.grad`` on
each framework and compares with the finite-difference ``ug.reference_grad`` on NumPy.
"""

from __future__ import annotations

import dataclasses
import doctest
import math
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from conftest import FRAMEWORK_BACKENDS, is_installed, require, skip_reason
from frameworks import MISSING_DTYPES, dtype_name, float64_rtol, make, to_numpy, tolerance

import unigrad as ug
from unigrad._namespace import (
    DTYPE_NAMES,
    GAPS,
    GUARANTEED,
    NOT_DIFFERENTIABLE,
    EighResult,
    Namespace,
    QRResult,
    SlogdetResult,
    SVDResult,
    gap_for,
    namespace,
    unsupported,
)

# The reference results are NumPy's own functions. NumPy before 2.1 lacks some of the standard's names
# (acos, cumulative_sum, unstack...; TensorFlow 2.16 needs NumPy 1.x): array-api-compat's NumPy
# namespace gives them over the same functions.
if np.lib.NumpyVersion(np.__version__) >= "2.1.0":
    REF: Any = np
else:
    import array_api_compat.numpy as REF

ARRAY_BACKENDS = ("numpy", *FRAMEWORK_BACKENDS)

# Tolerances, stated once: backends against NumPy on float64 values (different LAPACK/Eigen kernels
# agree to a few ulps), and framework gradients against float64 central differences.
VALUE_TOL = {"rtol": 1e-9, "atol": 1e-12}
GRAD_TOL = tolerance("float64")


@pytest.fixture(params=ARRAY_BACKENDS)
def array_backend(request: pytest.FixtureRequest) -> str:
    """Each array backend (NumPy included), skipped with the reason when its framework is missing."""
    name = request.param
    if name != "numpy" and not is_installed(name):
        pytest.skip(skip_reason(name))
    return name


# -- inputs --------------------------------------------------------------------------------------

_rng = np.random.default_rng(0)


def _normal(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


def _well_conditioned(*shape: int) -> np.ndarray:
    return _normal(*shape) + 3.0 * np.eye(shape[-1])


_spd_root = _normal(3, 3)

INPUTS: dict[str, np.ndarray] = {
    "v": _normal(5),
    "v3": _normal(3),
    "v4": _normal(4),
    "m": _normal(3, 4),
    "m2": _normal(3, 4),
    "m42": _normal(4, 2),
    "m43": _normal(4, 3),
    "b3": _normal(2, 3, 4),
    "pos": _rng.uniform(0.5, 2.0, (3, 4)),
    "sq": _well_conditioned(3, 3),
    "bsq": _well_conditioned(2, 3, 3),
    "spd": _spd_root @ _spd_root.T + 3.0 * np.eye(3),
    "m43b": _normal(4, 3),
    "b3b": _normal(2, 3, 4),
    "unit": _rng.uniform(-0.9, 0.9, (3, 4)),
    "above1": _rng.uniform(1.1, 3.0, (3, 4)),
    "with_zero": np.array([[2.0, 0.0, 3.0, 0.5], [1.5, -2.0, 0.0, 0.0], [0.7, 1.2, -0.4, 2.0]]),
    "halves": np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 0.49]),
    "signed": np.array([0.0, -0.0, 1.0, -2.0, math.inf, -math.inf, math.nan, -math.nan]),
    "ties": np.array([[1.0, 2.0, 1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 1.0, 1.0]]),
    "special": np.array([1.0, math.inf, -math.inf, math.nan, 0.0]),
    "minus_inf": np.array([[-math.inf, -math.inf], [0.0, -math.inf]]),
}


class Case(NamedTuple):
    """One call of a guaranteed function and what NumPy says it returns."""

    name: str  # the guaranteed name exercised
    call: Callable[..., Any]  # (xp, *arrays) -> array
    expected: Callable[..., Any]  # (*numpy arrays) -> numpy array
    inputs: tuple[str, ...] = ("m",)
    grad: bool = True  # differentiable: checked against reference_grad
    label: str = ""  # tells apart several cases of one name
    arguments: tuple[tuple[str, Any], ...] = ()  # what unigrad._namespace.gap_for needs to know


def _complex(xp: Any, re: Any, im: Any) -> Any:
    """``re + i·im`` as complex128, built with the namespace (so gradients flow to both parts)."""
    return xp.astype(re, xp.complex128) + xp.astype(im, xp.complex128) * xp.asarray(1j, dtype=xp.complex128)


def _cplx(xp: Any, re: Any, im: Any) -> Any:
    """``re + i·im`` in the backend's widest complex dtype (complex64 on MLX, which has no other)."""
    dtype = getattr(xp, "complex128", None) or xp.complex64
    return xp.astype(re, dtype) + xp.astype(im, dtype) * xp.asarray(1j, dtype=dtype)


def _parts(xp: Any, z: Any) -> Any:
    """A complex result as a real array (real and imaginary parts stacked), to compare and weight."""
    return xp.stack([xp.real(z), xp.imag(z)])


def _np_parts(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag])


def _np_logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _sym(xp: Namespace, a: Any) -> Any:
    """The symmetric part of a matrix."""
    return (a + xp.matrix_transpose(a)) * 0.5


def _reconstructed(xp: Namespace, svd: Any) -> Any:
    """``U @ diag(S) @ Vh``: independent of the singular vectors' signs."""
    return xp.matmul(svd.U * xp.expand_dims(svd.S, axis=-2), svd.Vh)


def _abs_qr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, r = REF.linalg.qr(x)
    return np.abs(q), np.abs(r)


_inf = math.inf
F64 = "float64"
_PICKS = [[0, 3, -1], [1, 1, 2], [2, 0, 0]]  # take_along_axis indices for a 3x4 array, negative too

CASES: list[Case] = [
    # creation
    Case("asarray", lambda xp: xp.asarray([[1.0, 2.0], [3.0, 4.5]], dtype=xp.float64),
         lambda: np.array([[1.0, 2.0], [3.0, 4.5]]), (), grad=False),
    Case("asarray", lambda xp: xp.asarray(np.arange(3.0)), lambda: np.arange(3.0), (), grad=False,
         label="numpy-input"),
    Case("zeros", lambda xp: xp.zeros((2, 3), dtype=xp.float64), lambda: np.zeros((2, 3)), (), grad=False),
    Case("ones", lambda xp: xp.ones(4, dtype=xp.float64), lambda: np.ones(4), (), grad=False),
    Case("zeros_like", lambda xp, a: xp.zeros_like(a), np.zeros_like, grad=False),
    Case("ones_like", lambda xp, a: xp.ones_like(a), np.ones_like, grad=False),
    Case("full", lambda xp: xp.full((2, 3), 1.5, dtype=xp.float64), lambda: np.full((2, 3), 1.5), (),
         grad=False),
    Case("eye", lambda xp: xp.eye(3, dtype=xp.float64), lambda: np.eye(3), (), grad=False),
    Case("arange", lambda xp: xp.arange(1, 8, 2, dtype=xp.int64), lambda: np.arange(1, 8, 2), (),
         grad=False),
    Case("arange", lambda xp: xp.arange(0.0, 1.0, 0.25, dtype=xp.float64), lambda: np.arange(0.0, 1.0, 0.25),
         (), grad=False, label="float"),
    Case("arange", lambda xp: xp.arange(4, dtype=xp.int32), lambda: np.arange(4, dtype=np.int32), (),
         grad=False, label="stop-only"),
    Case("astype", lambda xp, a: xp.astype(xp.astype(a, xp.float32), xp.float64),
         lambda a: a.astype(np.float32).astype(np.float64), grad=False),
    Case("astype", lambda xp, a: xp.astype(a, xp.float64), lambda a: a, label="float64"),
    Case("astype", lambda xp, a: xp.astype(a, xp.float32), lambda a: a.astype(np.float32), grad=False,
         label="float32"),
    # elementwise
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name))
      for name in ("abs", "exp", "expm1", "sin", "cos", "tanh", "sinh", "cosh", "square", "sign",
                   "negative", "floor")],
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name), ("pos",))
      for name in ("log", "log1p", "sqrt")],
    Case("tan", lambda xp, a: xp.tan(0.5 * a), lambda a: np.tan(0.5 * a)),
    Case("atan", lambda xp, a: xp.atan(a), np.arctan),
    Case("atan2", lambda xp, a, b: xp.atan2(a, b), np.arctan2, ("m", "m2")),
    Case("pow", lambda xp, a, b: xp.pow(a, b), np.power, ("pos", "m")),
    Case("pow", lambda xp, a: xp.pow(a, 3), lambda a: a**3, label="scalar-exponent"),
    Case("maximum", lambda xp, a, b: xp.maximum(a, b), np.maximum, ("m", "m2")),
    Case("maximum", lambda xp, a: xp.maximum(a, 0.25), lambda a: np.maximum(a, 0.25), label="scalar"),
    Case("minimum", lambda xp, a, b: xp.minimum(a, b), np.minimum, ("m", "m2")),
    Case("minimum", lambda xp, a, b: xp.minimum(a, b[0]), lambda a, b: np.minimum(a, b[0]), ("m", "m2"),
         label="broadcast"),
    Case("where", lambda xp, a, b: xp.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), ("m", "m2")),
    Case("where", lambda xp, a, b: xp.where(a[0] > 0, 0.5, b), lambda a, b: np.where(a[0] > 0, 0.5, b),
         ("m", "m2"), label="broadcast-scalar"),
    Case("clip", lambda xp, a: xp.clip(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5)),
    Case("clip", lambda xp, a: xp.clip(a, min=-0.5), lambda a: np.clip(a, -0.5, None), label="min-only"),
    Case("clip", lambda xp, a: xp.clip(a, max=0.5), lambda a: np.clip(a, None, 0.5), label="max-only"),
    Case("isfinite", lambda xp, a: xp.isfinite(a), np.isfinite, ("special",), grad=False),
    Case("logaddexp", lambda xp, a, b: xp.logaddexp(a, b), np.logaddexp, ("m", "m2")),
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name), label="real-input")
      for name in ("real", "imag", "conj")],
    Case("real", lambda xp, a, b: xp.real(_complex(xp, a, b) * _complex(xp, b, a)),
         lambda a, b: np.real((a + 1j * b) * (b + 1j * a)), ("m", "m2")),
    Case("imag", lambda xp, a, b: xp.imag(_complex(xp, a, b) * _complex(xp, b, a)),
         lambda a, b: np.imag((a + 1j * b) * (b + 1j * a)), ("m", "m2")),
    Case("conj", lambda xp, a, b: xp.imag(xp.conj(_complex(xp, a, b) * _complex(xp, a, a))),
         lambda a, b: np.imag(np.conj((a + 1j * b) * (a + 1j * a))), ("m", "m2")),
    Case("logaddexp", lambda xp, a, b: xp.logaddexp(a, b), np.logaddexp, ("m", "m"), label="ties"),
    Case("logaddexp", lambda xp, a, b: xp.logaddexp(800.0 * a, b), lambda a, b: np.logaddexp(800.0 * a, b),
         ("m", "m2"), grad=False, label="far-apart"),
    Case("logaddexp", lambda xp, a: xp.logaddexp(a, a), lambda a: np.logaddexp(a, a), ("special",),
         grad=False, label="infinities"),
    # elementwise added for the 2024.12 standard
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name), (given,))
      for name, given in (("acos", "unit"), ("asin", "unit"), ("atanh", "unit"), ("acosh", "above1"),
                          ("asinh", "m"), ("log2", "pos"), ("log10", "pos"), ("reciprocal", "pos"),
                          ("positive", "m"))],
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(3.0 * a))(name),
           (lambda fn: lambda a: getattr(REF, fn)(3.0 * a))(name))
      for name in ("ceil", "round", "trunc")],
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name), ("halves",),
           grad=False, label="halves")
      for name in ("ceil", "round", "trunc", "floor")],
    *[Case(name, (lambda fn: lambda xp, a, b: getattr(xp, fn)(a, b))(name), getattr(REF, name), ("m", "m2"))
      for name in ("add", "subtract", "multiply", "copysign", "hypot")],
    Case("add", lambda xp, a: xp.add(a, 2.5), lambda a: a + 2.5, label="scalar"),
    Case("multiply", lambda xp, a: xp.multiply(0.5, a), lambda a: 0.5 * a, label="scalar"),
    Case("divide", lambda xp, a, b: xp.divide(a, b), np.divide, ("m", "pos")),
    Case("divide", lambda xp, a, b: xp.divide(a, b[0]), lambda a, b: a / b[0], ("m", "pos"),
         label="broadcast"),
    Case("remainder", lambda xp, a, b: xp.remainder(3.0 * a, b), lambda a, b: np.remainder(3.0 * a, b),
         ("m", "pos")),
    Case("remainder", lambda xp, a: xp.remainder(a, -0.7), lambda a: np.remainder(a, -0.7),
         label="negative-divisor"),
    Case("remainder", lambda xp: xp.remainder(xp.asarray([5.0, -5.0, 5.0, -5.0], dtype=xp.float64),
                                              xp.asarray([3.0, 3.0, -3.0, -3.0], dtype=xp.float64)),
         lambda: np.remainder([5.0, -5.0, 5.0, -5.0], [3.0, 3.0, -3.0, -3.0]), (), grad=False,
         label="signs"),
    Case("copysign", lambda xp, a, b: xp.copysign(a, b), np.copysign,
         ("halves", "signed"), grad=False, label="signed-zeros"),
    Case("hypot", lambda xp, a, b: xp.hypot(1e200 * a, b), lambda a, b: np.hypot(1e200 * a, b), ("m", "m2"),
         grad=False, label="large"),
    # predicates: boolean and index results
    *[Case(name, (lambda fn: lambda xp, a, b: getattr(xp, fn)(a, xp.where(a > 0, a, b)))(name),
           (lambda fn: lambda a, b: getattr(np, fn)(a, np.where(a > 0, a, b)))(name), ("m", "m2"), grad=False)
      for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")],
    Case("less", lambda xp, a: xp.less(a, 0.25), lambda a: a < 0.25, grad=False, label="scalar"),
    *[Case(name, (lambda fn: lambda xp, a, b: getattr(xp, fn)(a > 0, b > 0))(name),
           (lambda fn: lambda a, b: getattr(REF, fn)(a > 0, b > 0))(name), ("m", "m2"), grad=False)
      for name in ("logical_and", "logical_or", "logical_xor")],
    Case("logical_not", lambda xp, a: xp.logical_not(a > 0), lambda a: ~(a > 0), grad=False),
    *[Case(name, (lambda fn: lambda xp, a: getattr(xp, fn)(a))(name), getattr(REF, name), ("signed",),
           grad=False)
      for name in ("isinf", "isnan", "signbit")],
    Case("all", lambda xp, a: xp.all(a > -1.5, axis=0), lambda a: np.all(a > -1.5, axis=0), grad=False),
    Case("all", lambda xp, a: xp.all(a), np.all, ("halves",), grad=False, label="all-axes"),
    Case("any", lambda xp, a: xp.any(a > 1.0, axis=1, keepdims=True),
         lambda a: np.any(a > 1.0, axis=1, keepdims=True), grad=False),
    Case("argmax", lambda xp, a: xp.argmax(a, axis=1), lambda a: np.argmax(a, axis=1), grad=False),
    Case("argmax", lambda xp, a: xp.argmax(a), np.argmax, ("ties",), grad=False, label="flattened-ties"),
    Case("argmin", lambda xp, a: xp.argmin(a, axis=0, keepdims=True),
         lambda a: np.argmin(a, axis=0, keepdims=True), ("ties",), grad=False),
    Case("argsort", lambda xp, a: xp.argsort(a, axis=0), lambda a: np.argsort(a, axis=0, kind="stable"),
         grad=False),
    Case("argsort", lambda xp, a: xp.argsort(a, descending=True),
         lambda a: np.argsort(-a, kind="stable"), ("ties",), grad=False, label="descending-ties"),
    # reductions
    Case("sum", lambda xp, a: xp.sum(a, axis=0), lambda a: np.sum(a, axis=0)),
    Case("sum", lambda xp, a: xp.sum(a, axis=(0, 2), keepdims=True),
         lambda a: np.sum(a, axis=(0, 2), keepdims=True), ("b3",), label="tuple-keepdims"),
    Case("mean", lambda xp, a: xp.mean(a), np.mean),
    Case("mean", lambda xp, a: xp.mean(a, axis=-1, keepdims=True), lambda a: np.mean(a, -1, keepdims=True),
         ("b3",), label="keepdims"),
    Case("prod", lambda xp, a: xp.prod(a, axis=0), lambda a: np.prod(a, axis=0), ("pos",)),
    Case("max", lambda xp, a: xp.max(a, axis=1), lambda a: np.max(a, axis=1)),
    Case("max", lambda xp, a: xp.max(a), np.max, label="all"),
    Case("min", lambda xp, a: xp.min(a, axis=(0, 1)), lambda a: np.min(a, axis=(0, 1)), ("b3",)),
    Case("var", lambda xp, a: xp.var(a), np.var),
    Case("var", lambda xp, a: xp.var(a, axis=0), lambda a: np.var(a, axis=0), label="axis"),
    Case("var", lambda xp, a: xp.var(a, axis=(0, 2), correction=1, keepdims=True),
         lambda a: np.var(a, axis=(0, 2), ddof=1, keepdims=True), ("b3",), label="correction"),
    Case("std", lambda xp, a: xp.std(a, axis=1), lambda a: np.std(a, axis=1)),
    Case("std", lambda xp, a: xp.std(a, axis=(1, 2), correction=1.0),
         lambda a: np.std(a, axis=(1, 2), ddof=1), ("b3",), label="correction"),
    Case("cumulative_sum", lambda xp, a: xp.cumulative_sum(a), np.cumsum, ("v",)),
    Case("cumulative_sum", lambda xp, a: xp.cumulative_sum(a, axis=1), lambda a: np.cumsum(a, axis=1),
         label="axis"),
    Case("cumulative_sum", lambda xp, a: xp.cumulative_sum(a, axis=0, include_initial=True),
         lambda a: REF.cumulative_sum(a, axis=0, include_initial=True), label="include-initial"),
    Case("cumulative_prod", lambda xp, a: xp.cumulative_prod(a), np.cumprod, ("v",)),
    Case("cumulative_prod", lambda xp, a: xp.cumulative_prod(a, axis=1), lambda a: np.cumprod(a, axis=1),
         ("pos",), label="axis"),
    Case("cumulative_prod", lambda xp, a: xp.cumulative_prod(a, axis=1), lambda a: np.cumprod(a, axis=1),
         ("with_zero",), label="zeros"),
    Case("cumulative_prod", lambda xp, a: xp.cumulative_prod(a, axis=0, include_initial=True),
         lambda a: REF.cumulative_prod(a, axis=0, include_initial=True), ("b3",), label="include-initial"),
    Case("diff", lambda xp, a: xp.diff(a), lambda a: np.diff(a)),
    Case("diff", lambda xp, a: xp.diff(a, axis=1, n=2), lambda a: np.diff(a, n=2, axis=1), ("b3",),
         label="n"),
    Case("diff", lambda xp, a, b: xp.diff(a, axis=0, prepend=b[:1], append=b[-1:]),
         lambda a, b: np.diff(a, axis=0, prepend=b[:1], append=b[-1:]), ("m", "m2"), label="prepend-append"),
    # manipulation
    Case("reshape", lambda xp, a: xp.reshape(a, (4, 3)), lambda a: np.reshape(a, (4, 3))),
    Case("reshape", lambda xp, a: xp.reshape(a, (2, -1)), lambda a: np.reshape(a, (2, -1)), ("b3",),
         label="infer"),
    Case("permute_dims", lambda xp, a: xp.permute_dims(a, (2, 0, 1)), lambda a: np.transpose(a, (2, 0, 1)),
         ("b3",)),
    Case("matrix_transpose", lambda xp, a: xp.matrix_transpose(a), lambda a: np.swapaxes(a, -1, -2),
         ("b3",)),
    Case("concat", lambda xp, a, b: xp.concat([a, b]), lambda a, b: np.concatenate([a, b]), ("m", "m2")),
    Case("concat", lambda xp, a, b: xp.concat([a, b], axis=-1), lambda a, b: np.concatenate([a, b], -1),
         ("m", "m2"), label="last-axis"),
    Case("concat", lambda xp, a, b: xp.concat([a, b], axis=None), lambda a, b: np.concatenate([a, b], None),
         ("m", "b3"), label="flattened"),
    Case("stack", lambda xp, a, b: xp.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
         ("m", "m2")),
    Case("take", lambda xp, a: xp.take(a, xp.asarray([2, 0, -1, 2]), axis=1),
         lambda a: np.take(a, [2, 0, -1, 2], axis=1)),
    Case("take", lambda xp, a: xp.take(a, xp.asarray([[0, 2], [2, -3]]), axis=0),
         lambda a: np.take(a, [[0, 2], [2, -3]], axis=0), label="2d-indices"),
    Case("take", lambda xp, a: xp.take(a, xp.asarray([0, 5, -1])), lambda a: np.take(a, [0, 5, -1]),
         label="flattened"),
    Case("expand_dims", lambda xp, a: xp.expand_dims(a, axis=1), lambda a: np.expand_dims(a, 1)),
    Case("expand_dims", lambda xp, a: xp.expand_dims(a, axis=-1), lambda a: np.expand_dims(a, -1),
         label="last"),
    Case("squeeze", lambda xp, a: xp.squeeze(xp.reshape(a, (3, 1, 4)), 1), lambda a: a),
    Case("flip", lambda xp, a: xp.flip(a), np.flip),
    Case("flip", lambda xp, a: xp.flip(a, axis=1), lambda a: np.flip(a, 1), label="axis"),
    Case("flip", lambda xp, a: xp.flip(a, axis=(0, 2)), lambda a: np.flip(a, (0, 2)), ("b3",), label="axes"),
    Case("broadcast_to", lambda xp, a: xp.broadcast_to(a, (2, 5)), lambda a: np.broadcast_to(a, (2, 5)),
         ("v",)),
    Case("moveaxis", lambda xp, a: xp.moveaxis(a, 0, -1), lambda a: np.moveaxis(a, 0, -1), ("b3",)),
    Case("moveaxis", lambda xp, a: xp.moveaxis(a, (0, 1), (2, 0)), lambda a: np.moveaxis(a, (0, 1), (2, 0)),
         ("b3",), label="several"),
    Case("unstack", lambda xp, a: xp.stack(xp.unstack(a, axis=1), axis=-1),
         lambda a: np.stack(REF.unstack(a, axis=1), axis=-1), ("b3",)),
    Case("take_along_axis", lambda xp, a: xp.take_along_axis(a, xp.asarray(_PICKS), axis=1),
         lambda a: np.take_along_axis(a, np.array(_PICKS), axis=1)),
    Case("take_along_axis", lambda xp, a: xp.take_along_axis(a, xp.asarray([[[2, 0]]]), axis=-1),
         lambda a: np.take_along_axis(a, np.array([[[2, 0]]]), axis=-1), ("b3",), label="broadcast"),
    Case("take_along_axis", lambda xp, a: xp.take_along_axis(a, xp.argsort(a, axis=0), axis=0),
         lambda a: np.sort(a, axis=0), label="argsort-indices"),
    Case("roll", lambda xp, a: xp.roll(a, 5), lambda a: np.roll(a, 5)),
    Case("roll", lambda xp, a: xp.roll(a, -1, axis=1), lambda a: np.roll(a, -1, axis=1), label="axis"),
    Case("roll", lambda xp, a: xp.roll(a, (1, -2), axis=(0, 2)), lambda a: np.roll(a, (1, -2), axis=(0, 2)),
         ("b3",), label="axes"),
    Case("repeat", lambda xp, a: xp.repeat(a, 2, axis=1), lambda a: np.repeat(a, 2, axis=1)),
    Case("repeat", lambda xp, a: xp.repeat(a, 2), lambda a: np.repeat(a, 2), label="flattened"),
    Case("repeat", lambda xp, a: xp.repeat(a, xp.asarray([1, 3, 0]), axis=0),
         lambda a: np.repeat(a, [1, 3, 0], axis=0), label="array"),
    Case("repeat", lambda xp, a: xp.repeat(a, [2, 0, 1, 1], axis=1),
         lambda a: np.repeat(a, [2, 0, 1, 1], axis=1), label="sequence"),
    Case("tile", lambda xp, a: xp.tile(a, (2, 1)), lambda a: np.tile(a, (2, 1))),
    Case("tile", lambda xp, a: xp.tile(a, (2,)), lambda a: np.tile(a, (2,)), label="fewer"),
    Case("tile", lambda xp, a: xp.tile(a, (2, 1, 3)), lambda a: np.tile(a, (2, 1, 3)), label="more"),
    Case("broadcast_arrays", lambda xp, a, b: xp.stack(xp.broadcast_arrays(a, b[0])),
         lambda a, b: np.stack(np.broadcast_arrays(a, b[0])), ("m", "m2")),
    Case("sort", lambda xp, a: xp.sort(a), np.sort),
    Case("sort", lambda xp, a: xp.sort(a, axis=0, descending=True), lambda a: -np.sort(-a, axis=0),
         ("b3",), label="descending"),
    Case("sort", lambda xp, a: xp.sort(a, descending=True), lambda a: -np.sort(-a), ("ties",), grad=False,
         label="ties"),
    Case("full_like", lambda xp, a: xp.full_like(a, 0.5), lambda a: np.full_like(a, 0.5), grad=False),
    Case("eye", lambda xp: xp.eye(3, 4, k=1, dtype=xp.float64), lambda: np.eye(3, 4, k=1), (), grad=False,
         label="k"),
    Case("linspace", lambda xp: xp.linspace(0.0, 2.0, 5, dtype=xp.float64), lambda: np.linspace(0.0, 2.0, 5),
         (), grad=False),
    Case("linspace", lambda xp: xp.linspace(1.0, 2.0, 4, dtype=xp.float64, endpoint=False),
         lambda: np.linspace(1.0, 2.0, 4, endpoint=False), (), grad=False, label="no-endpoint"),
    Case("meshgrid", lambda xp, a, b: xp.stack(xp.meshgrid(a, b)), lambda a, b: np.stack(np.meshgrid(a, b)),
         ("v3", "v4")),
    Case("meshgrid", lambda xp, a, b: xp.stack(xp.meshgrid(a, b, indexing="ij")),
         lambda a, b: np.stack(np.meshgrid(a, b, indexing="ij")), ("v3", "v4"), label="ij"),
    Case("tril", lambda xp, a: xp.tril(a), np.tril),
    Case("tril", lambda xp, a: xp.tril(a, k=1), lambda a: np.tril(a, k=1), ("b3",), label="k"),
    Case("triu", lambda xp, a: xp.triu(a), np.triu),
    Case("triu", lambda xp, a: xp.triu(a, k=-1), lambda a: np.triu(a, k=-1), ("b3",), label="k"),
    # linear algebra
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("m", "m42")),
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("m", "v4"), label="matrix-vector"),
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("v3", "m"), label="vector-matrix"),
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("v4", "v4"), label="vector-vector"),
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("b3", "m42"), label="batch-broadcast"),
    Case("matmul", lambda xp, a, b: xp.matmul(a, b), np.matmul, ("b3", "v4"), label="batch-vector"),
    Case("tensordot", lambda xp, a, b: xp.tensordot(a, b, axes=1), lambda a, b: np.tensordot(a, b, 1),
         ("m", "m42")),
    Case("tensordot", lambda xp, a, b: xp.tensordot(a, b), np.tensordot, ("b3", "m"), label="default-2"),
    Case("tensordot", lambda xp, a, b: xp.tensordot(a, b, axes=([0], [0])),
         lambda a, b: np.tensordot(a, b, ([0], [0])), ("m", "m2"), label="pairs"),
    Case("vecdot", lambda xp, a, b: xp.vecdot(a, b), lambda a, b: np.sum(a * b, -1), ("m", "m2")),
    Case("vecdot", lambda xp, a, b: xp.vecdot(a, b, axis=0), lambda a, b: np.sum(a * b, 0), ("m", "m2"),
         label="axis"),
    Case("vecdot", lambda xp, a, b: xp.vecdot(a, b), lambda a, b: np.sum(a * b, -1), ("b3", "m"),
         label="broadcast"),
    Case("linalg.solve", lambda xp, a, b: xp.linalg.solve(a, b), REF.linalg.solve, ("sq", "m")),
    Case("linalg.solve", lambda xp, a, b: xp.linalg.solve(a, b), REF.linalg.solve, ("sq", "v3"),
         label="vector"),
    Case("linalg.solve", lambda xp, a, b: xp.linalg.solve(a, b), REF.linalg.solve, ("bsq", "v3"),
         label="batch-vector"),
    Case("linalg.solve", lambda xp, a, b: xp.linalg.solve(a, b), REF.linalg.solve, ("bsq", "m"),
         label="batch-broadcast"),
    Case("linalg.inv", lambda xp, a: xp.linalg.inv(a), REF.linalg.inv, ("bsq",)),
    Case("linalg.det", lambda xp, a: xp.linalg.det(a), REF.linalg.det, ("sq",)),
    Case("linalg.det", lambda xp, a: xp.linalg.det(a), REF.linalg.det, ("bsq",), label="batch"),
    Case("linalg.slogdet", lambda xp, a: xp.stack(list(xp.linalg.slogdet(a))),
         lambda a: np.stack(REF.linalg.slogdet(a)), ("bsq",)),
    # The frameworks differentiate cholesky/eigh as functions of a symmetric matrix, NumPy's finite
    # differences see only the triangle LAPACK reads: symmetrising the input makes them one function.
    Case("linalg.cholesky", lambda xp, a: xp.linalg.cholesky(_sym(xp, a)),
         lambda a: REF.linalg.cholesky((a + a.T) / 2), ("spd",)),
    Case("linalg.eigh", lambda xp, a: xp.linalg.eigh(_sym(xp, a)).eigenvalues,
         lambda a: REF.linalg.eigh((a + a.T) / 2)[0], ("spd",)),
    # Eigenvector and QR signs are implementation-defined (LAPACK vs Eigen): compare magnitudes.
    Case("linalg.eigh", lambda xp, a: xp.abs(xp.linalg.eigh(_sym(xp, a)).eigenvectors),
         lambda a: np.abs(REF.linalg.eigh((a + a.T) / 2)[1]), ("spd",), label="eigenvectors"),
    Case("linalg.qr", lambda xp, a: xp.abs(xp.linalg.qr(a).Q), lambda a: _abs_qr(a)[0], ("m43",)),
    Case("linalg.qr", lambda xp, a: xp.abs(xp.linalg.qr(a).R), lambda a: _abs_qr(a)[1], ("m43",), label="R"),
    Case("linalg.vector_norm", lambda xp, a: xp.linalg.vector_norm(a), lambda a: REF.linalg.norm(a.ravel())),
    Case("linalg.vector_norm", lambda xp, a: xp.linalg.vector_norm(a, axis=1),
         lambda a: REF.linalg.norm(a, axis=1), label="axis"),
    Case("linalg.vector_norm", lambda xp, a: xp.linalg.vector_norm(a, axis=(0, 2), keepdims=True),
         lambda a: np.sqrt(np.sum(a * a, axis=(0, 2), keepdims=True)), ("b3",), label="keepdims"),
    *[Case("linalg.vector_norm", (lambda o: lambda xp, a: xp.linalg.vector_norm(a, ord=o))(order),
           (lambda o: lambda a: REF.linalg.norm(a.ravel(), ord=o))(order), grad=order != 0,
           label=f"ord={order}")
      for order in (1, 3, 0, _inf, -_inf)],
    *[Case("linalg.matrix_norm", (lambda o: lambda xp, a: xp.linalg.matrix_norm(a, ord=o))(order),
           (lambda o: lambda a: REF.linalg.norm(a, ord=o, axis=(-2, -1)))(order), ("b3",),
           label=f"ord={order}", arguments=(("ord", order),))
      for order in ("fro", "nuc", 1, -1, 2, -2, _inf, -_inf)],
    Case("linalg.matrix_norm", lambda xp, a: xp.linalg.matrix_norm(a, keepdims=True),
         lambda a: REF.linalg.norm(a, axis=(-2, -1), keepdims=True), ("b3",), label="keepdims"),
    Case("linalg.matmul", lambda xp, a, b: xp.linalg.matmul(a, b), np.matmul, ("m", "m42")),
    Case("linalg.tensordot", lambda xp, a, b: xp.linalg.tensordot(a, b, axes=1),
         lambda a, b: np.tensordot(a, b, 1), ("m", "m42")),
    Case("linalg.vecdot", lambda xp, a, b: xp.linalg.vecdot(a, b), lambda a, b: np.sum(a * b, -1),
         ("m", "m2")),
    Case("linalg.matrix_transpose", lambda xp, a: xp.linalg.matrix_transpose(a),
         lambda a: np.swapaxes(a, -1, -2), ("b3",)),
    Case("linalg.eigvalsh", lambda xp, a: xp.linalg.eigvalsh(_sym(xp, a)),
         lambda a: REF.linalg.eigvalsh((a + a.T) / 2), ("spd",)),
    Case("linalg.svdvals", lambda xp, a: xp.linalg.svdvals(a), REF.linalg.svdvals),
    Case("linalg.svdvals", lambda xp, a: xp.linalg.svdvals(a), REF.linalg.svdvals, ("bsq",), label="batch"),
    # Singular vectors' signs are implementation-defined: compare magnitudes, or the product.
    Case("linalg.svd", lambda xp, a: xp.linalg.svd(a, full_matrices=False).S,
         lambda a: REF.linalg.svd(a, full_matrices=False).S, ("m43",),
         arguments=(("full_matrices", False), ("part", "S"))),
    Case("linalg.svd", lambda xp, a: xp.abs(xp.linalg.svd(a, full_matrices=False).U),
         lambda a: np.abs(REF.linalg.svd(a, full_matrices=False).U), ("m43",), label="U",
         arguments=(("full_matrices", False), ("part", "U"))),
    Case("linalg.svd", lambda xp, a: xp.abs(xp.linalg.svd(a).Vh), lambda a: np.abs(REF.linalg.svd(a).Vh),
         ("sq",), label="Vh-square", arguments=(("shape", (3, 3)), ("part", "Vh"))),
    Case("linalg.svd", lambda xp, a: xp.linalg.svd(a).S, lambda a: REF.linalg.svd(a).S, ("m43",),
         label="full-S", arguments=(("shape", (4, 3)), ("part", "S"))),
    Case("linalg.svd", lambda xp, a: _reconstructed(xp, xp.linalg.svd(a, full_matrices=False)), lambda a: a,
         ("m",), label="reconstruct", arguments=(("full_matrices", False),)),
    Case("linalg.pinv", lambda xp, a: xp.linalg.pinv(a), REF.linalg.pinv),
    Case("linalg.pinv", lambda xp, a: xp.linalg.pinv(a, rtol=0.5), lambda a: REF.linalg.pinv(a, rtol=0.5),
         ("sq",), grad=False, label="rtol"),
    Case("linalg.matrix_power", lambda xp, a: xp.linalg.matrix_power(a, 3),
         lambda a: REF.linalg.matrix_power(a, 3), ("sq",), arguments=(("n", 3),)),
    Case("linalg.matrix_power", lambda xp, a: xp.linalg.matrix_power(a, 0),
         lambda a: REF.linalg.matrix_power(a, 0), ("bsq",), grad=False, label="zero"),
    Case("linalg.matrix_power", lambda xp, a: xp.linalg.matrix_power(a, -2),
         lambda a: REF.linalg.matrix_power(a, -2), ("bsq",), label="negative", arguments=(("n", -2),)),
    Case("linalg.cross", lambda xp, a, b: xp.linalg.cross(a, b), REF.linalg.cross, ("m43", "m43b")),
    Case("linalg.cross", lambda xp, a, b: xp.linalg.cross(a, b), REF.linalg.cross, ("m43", "v3"),
         label="broadcast"),
    Case("linalg.cross", lambda xp, a, b: xp.linalg.cross(a, b, axis=0),
         lambda a, b: REF.linalg.cross(a, b, axis=0), ("m", "m2"), label="axis"),
    Case("linalg.outer", lambda xp, a, b: xp.linalg.outer(a, b), np.outer, ("v3", "v4")),
    Case("linalg.diagonal", lambda xp, a: xp.linalg.diagonal(a), REF.linalg.diagonal),
    Case("linalg.diagonal", lambda xp, a: xp.linalg.diagonal(a, offset=-1),
         lambda a: REF.linalg.diagonal(a, offset=-1), ("b3",), label="offset"),
    Case("linalg.trace", lambda xp, a: xp.linalg.trace(a), REF.linalg.trace),
    Case("linalg.trace", lambda xp, a: xp.linalg.trace(a, offset=1), lambda a: REF.linalg.trace(a, offset=1),
         ("b3",), label="offset"),
    # fft: complex results compared (and weighted) as their real and imaginary parts
    Case("fft.fft", lambda xp, a: _parts(xp, xp.fft.fft(a)), lambda a: _np_parts(np.fft.fft(a))),
    Case("fft.fft", lambda xp, a: _parts(xp, xp.fft.fft(a, n=5, axis=0, norm="ortho")),
         lambda a: _np_parts(np.fft.fft(a, n=5, axis=0, norm="ortho")), label="n-axis-ortho"),
    Case("fft.ifft", lambda xp, a, b: _parts(xp, xp.fft.ifft(_cplx(xp, a, b))),
         lambda a, b: _np_parts(np.fft.ifft(a + 1j * b)), ("m", "m2")),
    Case("fft.ifft", lambda xp, a, b: _parts(xp, xp.fft.ifft(_cplx(xp, a, b), n=3, norm="forward")),
         lambda a, b: _np_parts(np.fft.ifft(a + 1j * b, n=3, norm="forward")), ("m", "m2"),
         label="n-forward"),
    Case("fft.fftn", lambda xp, a: _parts(xp, xp.fft.fftn(a)), lambda a: _np_parts(np.fft.fftn(a)), ("b3",)),
    Case("fft.fftn", lambda xp, a: _parts(xp, xp.fft.fftn(a, s=(3, 5), axes=(0, 2), norm="ortho")),
         lambda a: _np_parts(np.fft.fftn(a, s=(3, 5), axes=(0, 2), norm="ortho")), ("b3",), label="s-axes"),
    Case("fft.ifftn", lambda xp, a, b: _parts(xp, xp.fft.ifftn(_cplx(xp, a, b))),
         lambda a, b: _np_parts(np.fft.ifftn(a + 1j * b)), ("m", "m2")),
    Case("fft.ifftn", lambda xp, a, b: _parts(xp, xp.fft.ifftn(_cplx(xp, a, b), s=(5,), axes=(0,))),
         lambda a, b: _np_parts(np.fft.ifftn(a + 1j * b, s=(5,), axes=(0,))), ("m", "m2"), label="s-axes"),
    Case("fft.rfft", lambda xp, a: _parts(xp, xp.fft.rfft(a)), lambda a: _np_parts(np.fft.rfft(a))),
    Case("fft.rfft", lambda xp, a: _parts(xp, xp.fft.rfft(a, n=7, axis=0, norm="forward")),
         lambda a: _np_parts(np.fft.rfft(a, n=7, axis=0, norm="forward")), label="n-axis-forward"),
    Case("fft.irfft", lambda xp, a, b: xp.fft.irfft(_cplx(xp, a, b)), lambda a, b: np.fft.irfft(a + 1j * b),
         ("m", "m2")),
    Case("fft.irfft", lambda xp, a, b: xp.fft.irfft(_cplx(xp, a, b), n=5, axis=0, norm="ortho"),
         lambda a, b: np.fft.irfft(a + 1j * b, n=5, axis=0, norm="ortho"), ("m", "m2"), label="n-axis-ortho"),
    Case("fft.rfftn", lambda xp, a: _parts(xp, xp.fft.rfftn(a)), lambda a: _np_parts(np.fft.rfftn(a)),
         ("b3",)),
    Case("fft.rfftn", lambda xp, a: _parts(xp, xp.fft.rfftn(a, s=(4, 6), axes=(1, 2))),
         lambda a: _np_parts(np.fft.rfftn(a, s=(4, 6), axes=(1, 2))), ("b3",), label="s-axes"),
    Case("fft.irfftn", lambda xp, a, b: xp.fft.irfftn(_cplx(xp, a, b)),
         lambda a, b: np.fft.irfftn(a + 1j * b), ("b3", "b3b")),
    Case("fft.irfftn", lambda xp, a, b: xp.fft.irfftn(_cplx(xp, a, b), s=(3, 5), axes=(0, 1), norm="forward"),
         lambda a, b: np.fft.irfftn(a + 1j * b, s=(3, 5), axes=(0, 1), norm="forward"), ("m", "m2"),
         label="s-axes-forward"),
    Case("fft.hfft", lambda xp, a, b: xp.fft.hfft(_cplx(xp, a, b)), lambda a, b: np.fft.hfft(a + 1j * b),
         ("m", "m2")),
    Case("fft.hfft", lambda xp, a, b: xp.fft.hfft(_cplx(xp, a, b), n=5, axis=0, norm="ortho"),
         lambda a, b: np.fft.hfft(a + 1j * b, n=5, axis=0, norm="ortho"), ("m", "m2"), label="n-axis-ortho"),
    Case("fft.ihfft", lambda xp, a: _parts(xp, xp.fft.ihfft(a)), lambda a: _np_parts(np.fft.ihfft(a))),
    Case("fft.ihfft", lambda xp, a: _parts(xp, xp.fft.ihfft(a, n=6, norm="forward")),
         lambda a: _np_parts(np.fft.ihfft(a, n=6, norm="forward")), label="n-forward"),
    Case("fft.fftshift", lambda xp, a: xp.fft.fftshift(a), np.fft.fftshift, ("b3",)),
    Case("fft.fftshift", lambda xp, a: xp.fft.fftshift(a, axes=1), lambda a: np.fft.fftshift(a, axes=1),
         label="axis"),
    Case("fft.ifftshift", lambda xp, a: xp.fft.ifftshift(a, axes=(0, 2)),
         lambda a: np.fft.ifftshift(a, axes=(0, 2)), ("b3",)),
    Case("fft.fftfreq", lambda xp: xp.fft.fftfreq(5, d=0.5, dtype=xp.float64), lambda: np.fft.fftfreq(5, 0.5),
         (), grad=False),
    Case("fft.fftfreq", lambda xp: xp.fft.fftfreq(6, dtype=xp.float64), lambda: np.fft.fftfreq(6), (),
         grad=False, label="even"),
    Case("fft.rfftfreq", lambda xp: xp.fft.rfftfreq(7, d=2.0, dtype=xp.float64),
         lambda: np.fft.rfftfreq(7, 2.0), (), grad=False),
    # extras
    Case("logsumexp", lambda xp, a: xp.logsumexp(a), _np_logsumexp),
    Case("logsumexp", lambda xp, a: xp.logsumexp(a, axis=1), lambda a: _np_logsumexp(a, 1), label="axis"),
    Case("logsumexp", lambda xp, a: xp.logsumexp(a, axis=(0, 2), keepdims=True),
         lambda a: _np_logsumexp(a, (0, 2), True), ("b3",), label="keepdims"),
    Case("logsumexp", lambda xp, a: xp.logsumexp(a, axis=1), lambda a: _np_logsumexp(a, 1), ("minus_inf",),
         grad=False, label="minus-inf"),
    Case("logsumexp", lambda xp, a: xp.logsumexp(1000.0 * a, axis=0),
         lambda a: 1000.0 * np.max(a, 0) + _np_logsumexp(1000.0 * (a - np.max(a, 0)), 0), grad=False,
         label="large"),
    Case("sigmoid", lambda xp, a: xp.sigmoid(3.0 * a), lambda a: 1 / (1 + np.exp(-3.0 * a))),
    Case("sigmoid", lambda xp, a: xp.sigmoid(400.0 * a), lambda a: 0.5 * (1 + np.tanh(200.0 * a)),
         grad=False, label="tails"),
    Case("softplus", lambda xp, a: xp.softplus(a), lambda a: np.log1p(np.exp(a))),
    Case("softplus", lambda xp, a: xp.softplus(30.0 * a),
         lambda a: np.maximum(30.0 * a, 0) + np.log1p(np.exp(-np.abs(30.0 * a))), grad=False,
         label="large"),
    Case("relu", lambda xp, a: xp.relu(a), lambda a: np.maximum(a, 0.0)),
    Case("erf", lambda xp, a: xp.erf(a), np.vectorize(math.erf)),
    Case("rsqrt", lambda xp, a: xp.rsqrt(a), lambda a: 1 / np.sqrt(a), ("pos",)),
    Case("log_softmax", lambda xp, a: xp.log_softmax(a), lambda a: a - _np_logsumexp(a, -1, True)),
    Case("log_softmax", lambda xp, a: xp.log_softmax(a, axis=0), lambda a: a - _np_logsumexp(a, 0, True),
         label="axis"),
    Case("softmax", lambda xp, a: xp.softmax(a), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
    Case("softmax", lambda xp, a: xp.softmax(a, axis=1),
         lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True), ("b3",), label="axis"),
    Case("einsum", lambda xp, a, b: xp.einsum("ij,kj->ik", a, b), lambda a, b: np.einsum("ij,kj->ik", a, b),
         ("m", "m2")),
    Case("einsum", lambda xp, a, b: xp.einsum("bij,jk->bik", a, b),
         lambda a, b: np.einsum("bij,jk->bik", a, b), ("b3", "m42"), label="batch"),
]  # fmt: skip


def _case_id(case: Case) -> str:
    return f"{case.name}[{case.label}]" if case.label else case.name


def test_every_guaranteed_name_has_a_case() -> None:
    assert {case.name for case in CASES} == set(GUARANTEED)
    assert len(set(GUARANTEED)) == len(GUARANTEED)
    assert len({_case_id(case) for case in CASES}) == len(CASES)


def _namespace_of(backend: str) -> Namespace:
    return namespace(make(backend, [0.0]))


# -- values ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jax_results() -> dict[str, Any]:
    """Every case's JAX result from one ``jax.jit``.

    Compiling each case eagerly costs JAX tens of milliseconds per operation, most of this file's run
    time; one program compiles several times faster. Tracers inside jit also exercise ``namespace``
    on JAX tracers.
    """
    import jax

    def run(cases: list[Case], arrays: dict[str, Any]) -> dict[str, Any]:
        xp = namespace(arrays)
        return {_case_id(case): case.call(xp, *(arrays[name] for name in case.inputs)) for case in cases}

    arrays = {name: make("jax", value) for name, value in INPUTS.items()}
    eager = [case for case in CASES if _case_id(case) in JAX_EAGER]
    jitted = [case for case in CASES if _case_id(case) not in JAX_EAGER]
    return {**jax.jit(lambda arrays: run(jitted, arrays))(arrays), **run(eager, arrays)}


#: Cases that need concrete values, which a JAX tracer inside ``jax.jit`` does not have: the size of
#: ``repeat``'s result depends on the values of an array of repeats.
JAX_EAGER = {"repeat[array]"}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_numpy(case: Case, array_backend: str, request: pytest.FixtureRequest) -> None:
    _skip_missing_complex128(case, array_backend)
    if array_backend == "jax":
        result = request.getfixturevalue("jax_results")[_case_id(case)]
    else:
        arrays = [make(array_backend, INPUTS[name]) for name in case.inputs]
        xp = namespace(arrays[0]) if arrays else _namespace_of(array_backend)
        with np.errstate(all="ignore"):
            result = case.call(xp, *arrays)
    with np.errstate(all="ignore"):
        expected = np.asarray(case.expected(*(INPUTS[name] for name in case.inputs)))
    where = f"{_case_id(case)} on {array_backend}"
    tol = dict(VALUE_TOL)
    if _in_complex64(case, array_backend):
        expected, tol = expected.astype(np.float32), COMPLEX64_VALUE_TOL
    assert tuple(result.shape) == expected.shape, f"{where}: shape"
    assert dtype_name(result) == expected.dtype.name, f"{where}: dtype"
    rtol = float64_rtol(array_backend, case.name, tol["rtol"])
    if array_backend == "jax" and case.name == "astype" and _jax_on_accelerator():
        # XLA on a GPU may skip the float32 rounding of a float64 -> float32 -> float64 round trip
        # inside jax.jit (xla_allow_excess_precision, on by default there): seen on an H200, 4e-8.
        rtol = max(rtol, float(np.finfo(np.float32).eps))
    np.testing.assert_allclose(to_numpy(result), expected, **{**tol, "rtol": rtol}, err_msg=where)


#: The transforms compute in complex; a backend without complex128 (MLX) computes them in complex64,
#: so their float64 results are float32 there and are compared at float32 precision.
_COMPLEX_COMPUTING = {name for name in GUARANTEED if name.startswith("fft.")} - {
    "fft.fftshift",
    "fft.ifftshift",
    "fft.fftfreq",
    "fft.rfftfreq",
}
COMPLEX64_VALUE_TOL = {"rtol": 1e-5, "atol": 1e-5}
COMPLEX64_GRAD_TOL = {"rtol": 2e-4, "atol": 1e-4}


def _in_complex64(case: Case, backend: str) -> bool:
    return case.name in _COMPLEX_COMPUTING and "complex128" in MISSING_DTYPES.get(backend, ())


def _jax_on_accelerator() -> bool:
    import jax

    return jax.default_backend() != "cpu"


# -- gradients -------------------------------------------------------------------------------------

# JAX's functions are jax.numpy's and jax.nn's own, and each eager JAX operation compiles (slowly)
# on first use; so JAX differentiates a sample (the wrapped ones, its declared gaps and the
# regression loss below), PyTorch, TensorFlow and MLX every case.
JAX_GRAD_SAMPLE = {"linalg.slogdet", "linalg.qr", "linalg.svd", "softplus", "einsum", "meshgrid"}


def _gap(backend: str, case: Case) -> Any:
    """The declared gap (``unigrad._namespace.gap_for``) this case's gradient falls in, or None."""
    arguments = {"shape": np.shape(INPUTS[case.inputs[0]]) if case.inputs else None, **dict(case.arguments)}
    return gap_for(backend, case.name, **arguments)


def _skip_missing_complex128(case: Case, backend: str) -> None:
    complex_case = case.name in ("real", "imag", "conj") and case.label != "real-input"
    if complex_case and "complex128" in MISSING_DTYPES.get(backend, ()):
        pytest.skip(f"{backend} has no complex128, which this case computes in")


def _grad_params() -> list[Any]:
    params = []
    for backend in FRAMEWORK_BACKENDS:
        missing = pytest.mark.skipif(not is_installed(backend), reason=skip_reason(backend))
        for case in CASES:
            gap = _gap(backend, case)
            sampled = case.name in JAX_GRAD_SAMPLE and not case.label
            if case.grad and (backend != "jax" or sampled or gap is not None):
                marks = [missing]
                if gap is not None:
                    # The framework must still refuse (a strict xfail notices the day it does not).
                    reason = f"declared: {backend} has no gradient for {_case_id(case)}: {gap.describe()}"
                    raises = (ValueError, NotImplementedError)
                    marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=reason))
                params.append(pytest.param(backend, case, id=f"{backend}-{_case_id(case)}", marks=marks))
    return params


@pytest.mark.parametrize(("backend", "case"), _grad_params())
def test_differentiates_through_ug_grad(backend: str, case: Case) -> None:
    _skip_missing_complex128(case, backend)
    inputs = [INPUTS[name] for name in case.inputs]
    weights = np.random.default_rng(1).standard_normal(np.shape(case.expected(*inputs)))

    def loss(params: list[Any], data: dict[str, Any]) -> Any:
        xp = namespace(params)
        return xp.sum(case.call(xp, *params) * data["w"])

    expected = ug.reference_grad(loss, inputs, {"w": weights})
    grads = ug.grad(loss, [make(backend, x) for x in inputs], {"w": weights}, backend=backend)
    tol = COMPLEX64_GRAD_TOL if _in_complex64(case, backend) else GRAD_TOL
    rtol = float64_rtol(backend, case.name, tol["rtol"])
    for grad, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(
            to_numpy(grad), want, **{**tol, "rtol": rtol}, err_msg=f"{_case_id(case)} on {backend}"
        )


def _cumprod_loss(params: dict[str, Any], data: dict[str, Any]) -> Any:
    xp = namespace(params)
    return xp.sum(xp.cumulative_prod(params["x"], axis=0) * data["w"])


def _cumprod_derivatives(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of ``sum_i w_i prod_{k<=i} x_k``, term by term (no division by x)."""
    n = len(x)
    grad, hess = np.zeros(n), np.zeros((n, n))
    for i in range(n):
        for a in range(i + 1):
            grad[a] += w[i] * np.prod([x[k] for k in range(i + 1) if k != a])
            for b in range(i + 1):
                if b != a:
                    hess[a, b] += w[i] * np.prod([x[k] for k in range(i + 1) if k not in (a, b)])
    return grad, hess


@pytest.mark.parametrize("values", [[2.0, 0.0, 3.0, 0.5, 0.0], [0.0, 1.5, 0.0, 2.0, -1.0]])
def test_cumulative_prod_derivatives_at_zeros(backend: str, values: list[float]) -> None:
    # TensorFlow's cumprod gradient gives 0 to the first zero, MLX's second derivative is NaN there:
    # the namespace's cumulative_prod is exact to second order on every backend.
    x, w = np.array(values), np.array([0.3, -1.0, 2.0, 0.7, 1.1])
    want_grad, want_hess = _cumprod_derivatives(x, w)
    grads = ug.grad(_cumprod_loss, {"x": x}, {"w": w}, backend=backend)
    hessian = ug.hessian(_cumprod_loss, {"x": x}, {"w": w}, backend=backend)
    np.testing.assert_allclose(to_numpy(grads["x"]), want_grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(hessian["x"]["x"]), want_hess, rtol=1e-12, atol=1e-12)


def _regression_loss(params: dict[str, Any], data: dict[str, Any]) -> Any:
    xp = namespace(params)
    hidden = xp.tanh(xp.matmul(data["x"], params["w"]) + params["b"])
    picked = xp.take(hidden, data["rows"], axis=0)
    solved = xp.linalg.solve(data["a"], xp.matrix_transpose(picked))
    return (
        xp.mean(xp.logsumexp(hidden, axis=1))
        + xp.var(params["w"], axis=0)[0]
        + xp.sum(xp.square(solved))
        + xp.sum(xp.matmul(hidden, params["v"]))
    )


def test_one_loss_same_gradient_on_every_backend() -> None:
    rng = np.random.default_rng(2)
    params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3), "v": rng.standard_normal(3)}
    data = {
        "x": rng.standard_normal((5, 4)),
        "rows": np.array([4, 0, -1, 2]),
        "a": rng.standard_normal((3, 3)) + 3 * np.eye(3),
    }
    expected = ug.reference_grad(_regression_loss, params, data)
    ran = 0
    for backend in FRAMEWORK_BACKENDS:
        if not is_installed(backend):
            continue
        grads = ug.grad(_regression_loss, {k: make(backend, v) for k, v in params.items()}, data,
                        backend=backend)  # fmt: skip
        for key, want in expected.items():
            np.testing.assert_allclose(to_numpy(grads[key]), want, **GRAD_TOL, err_msg=f"{key} on {backend}")
        ran += 1
    if not ran:
        pytest.skip("no framework installed")


def test_jax_tracers_under_grad_and_jit() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    def loss(x: Any) -> Any:
        xp = namespace({"x": x})
        assert xp.name == "jax"
        return xp.sum(xp.softplus(x) * xp.var(x))

    x = jnp.asarray(INPUTS["v"])
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(x), jax.grad(loss)(x), rtol=1e-12)


def test_torch_tensor_requiring_grad_and_tf_tensor_on_tape() -> None:
    require("torch", "tensorflow")
    import tensorflow as tf
    import torch

    x = torch.tensor(INPUTS["m"], requires_grad=True)
    namespace(x).sum(namespace(x).exp(x)).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(INPUTS["m"]), **VALUE_TOL)
    y = tf.Variable(INPUTS["m"])
    with tf.GradientTape() as tape:
        xp = namespace(y)
        value = xp.sum(xp.exp(y))
    np.testing.assert_allclose(tape.gradient(value, y).numpy(), np.exp(INPUTS["m"]), **VALUE_TOL)


# -- namespace behaviour -----------------------------------------------------------------------------


def test_tuple_results_are_the_array_api_named_tuples(array_backend: str) -> None:
    xp = _namespace_of(array_backend)
    spd, m43 = make(array_backend, INPUTS["spd"]), make(array_backend, INPUTS["m43"])
    sign, logabsdet = xp.linalg.slogdet(spd)
    assert isinstance(xp.linalg.slogdet(spd), SlogdetResult)
    np.testing.assert_allclose(to_numpy(logabsdet), REF.linalg.slogdet(INPUTS["spd"])[1], **VALUE_TOL)
    assert float(to_numpy(sign)) == 1.0
    eig = xp.linalg.eigh(spd)
    assert isinstance(eig, EighResult)
    reconstructed = xp.matmul(eig.eigenvectors * eig.eigenvalues, xp.matrix_transpose(eig.eigenvectors))
    np.testing.assert_allclose(to_numpy(reconstructed), INPUTS["spd"], **VALUE_TOL)
    q, r = result = xp.linalg.qr(m43)
    assert isinstance(result, QRResult) and result.Q is q and result.R is r
    assert tuple(q.shape) == (4, 3) and tuple(r.shape) == (3, 3)  # reduced
    np.testing.assert_allclose(to_numpy(xp.matmul(q, r)), INPUTS["m43"], **VALUE_TOL)


def test_containers_are_the_standards(array_backend: str) -> None:
    # NumPy and PyTorch give tuples for meshgrid and broadcast_arrays, the standard lists (JAX's too).
    xp = _namespace_of(array_backend)
    a, b = make(array_backend, INPUTS["v3"]), make(array_backend, INPUTS["v4"])
    assert type(xp.meshgrid(a, b)) is list and type(xp.broadcast_arrays(a, a)) is list
    assert type(xp.unstack(make(array_backend, INPUTS["m"]))) is tuple
    assert isinstance(xp.linalg.svd(make(array_backend, INPUTS["sq"])), SVDResult)


def test_linspace_and_fftfreq_follow_the_device() -> None:
    require("torch")
    import torch

    xp = namespace(torch.zeros(2, device="meta"))
    assert xp.linspace(0.0, 1.0, 5).device.type == "meta"
    assert xp.fft.fftfreq(4).device.type == "meta" and xp.fft.rfftfreq(4).device.type == "meta"
    assert xp.linspace(0.0, 1.0, 5, device="cpu").device.type == "cpu"


def test_declared_gaps_name_differentiable_guaranteed_functions() -> None:
    assert {gap.backend for gap in GAPS} <= {"torch", "tensorflow", "jax", "mlx"}
    for gap in GAPS:
        assert gap.name in GUARANTEED and gap.name not in NOT_DIFFERENTIABLE, gap
        assert unsupported(gap.backend)[gap.name] == gap.describe()
    assert unsupported("numpy") == {}
    assert gap_for("mlx", "linalg.matrix_power", n=3) is None and gap_for("mlx", "linalg.matrix_power", n=-1)
    assert gap_for("jax", "linalg.svd", shape=(4, 3), part="S") is not None
    assert gap_for("torch", "linalg.svd", shape=(4, 3), part="S") is None
    assert gap_for("torch", "linalg.svd", shape=(4, 3), part="U") is not None
    assert gap_for("torch", "linalg.svd", shape=(3, 3)) is None
    assert gap_for("torch", "linalg.svd", shape=(4, 3), full_matrices=False) is None


STATUS_BACKENDS = ("torch", "tensorflow", "jax", "mlx", "numpy")


def status_cell(backend: str, name: str) -> str:
    """What docs/namespace.md's status table says of ``name`` on ``backend``, from the declarations."""
    if name in NOT_DIFFERENTIABLE:
        return "—"
    gap = next((gap for gap in GAPS if (gap.backend, gap.name) == (backend, name)), None)
    if gap is None:
        return "✓"
    return f"✓ except {gap.arguments} (below)" if gap.arguments else f"✗ {gap.reason}"


def status_table() -> str:
    """The table as docs/namespace.md has it (regenerate it with this function after a change)."""
    lines = [f"| name | {' | '.join(STATUS_BACKENDS)} |", "|---" * (len(STATUS_BACKENDS) + 1) + "|"]
    for name in GUARANTEED:
        lines.append(f"| `{name}` | " + " | ".join(status_cell(b, name) for b in STATUS_BACKENDS) + " |")
    return "\n".join(lines)


def test_docs_status_table_is_the_declarations() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "namespace.md").read_text(encoding="utf-8")
    assert status_table() in page, "docs/namespace.md: regenerate the status table with status_table()"
    for gap in GAPS:
        assert gap.describe() in page, f"docs/namespace.md does not list the declared gap {gap}"


def test_dtypes_and_name(array_backend: str) -> None:
    xp = _namespace_of(array_backend)
    assert xp.name == array_backend
    for name in DTYPE_NAMES:
        if name == "bfloat16" and array_backend == "numpy" and not is_installed("ml_dtypes"):
            continue
        if name in MISSING_DTYPES.get(array_backend, ()):
            assert not hasattr(xp, name), f"{array_backend} has no {name}: the namespace must say so"
            continue
        dtype = getattr(xp, name)
        assert dtype_name(xp.zeros(2, dtype=dtype)) == name


def test_one_cached_namespace_per_backend(array_backend: str) -> None:
    xp = _namespace_of(array_backend)
    assert namespace(make(array_backend, [[1.0]])) is xp
    assert namespace({"w": make(array_backend, [1.0], "float32")}) is xp


def test_tensorflow_matmul_takes_vectors_and_promotes() -> None:
    require("tensorflow")
    import tensorflow as tf

    matrix, vector = tf.constant(INPUTS["m"]), tf.constant(INPUTS["v4"], dtype=tf.float32)
    xp = namespace(matrix)
    product = xp.matmul(matrix, vector)  # tf.matmul refuses a vector and a float32/float64 mix
    assert product.dtype == tf.float64 and tuple(product.shape) == (3,)
    np.testing.assert_allclose(product.numpy(), INPUTS["m"] @ INPUTS["v4"].astype(np.float32), **VALUE_TOL)


def test_tensorflow_numpy_behaviour_stays_off() -> None:
    require("tensorflow")
    import tensorflow as tf

    xp = _namespace_of("tensorflow")
    for case in CASES:
        arrays = [make("tensorflow", INPUTS[name]) for name in case.inputs]
        case.call(xp, *arrays)
    assert not hasattr(tf.constant(1.0), "sum")
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.constant(1.0) + tf.constant(1.0, dtype=tf.float64)  # TF's own rule: no promotion


def test_tensorflow_inside_tf_function() -> None:
    require("tensorflow")
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float64)])
    def statistics(x: Any) -> Any:
        xp = namespace(x)  # a symbolic tensor with an unknown first dimension
        return xp.var(x, axis=0, correction=1), xp.matmul(x, xp.ones(4, dtype=xp.float64))

    variance, row_sums = statistics(tf.constant(INPUTS["m"]))
    np.testing.assert_allclose(variance.numpy(), np.var(INPUTS["m"], axis=0, ddof=1), **VALUE_TOL)
    np.testing.assert_allclose(row_sums.numpy(), INPUTS["m"].sum(1), **VALUE_TOL)


@pytest.mark.parametrize("attribute", ["unique_values", "nonzero", "searchsorted", "float128", "bitwise_and"])
def test_names_outside_the_subset_raise(attribute: str) -> None:
    xp = _namespace_of("numpy")
    with pytest.raises(AttributeError, match=r"docs/namespace\.md"):
        getattr(xp, attribute)


@pytest.mark.parametrize("dotted", ["linalg.matrix_rank", "linalg.lstsq", "fft.fft2", "fft.rfft2"])
def test_extension_names_outside_the_subset_raise(array_backend: str, dotted: str) -> None:
    xp = _namespace_of(array_backend)
    extension, name = dotted.split(".")
    pattern = dotted.replace(".", r"\.")
    with pytest.raises(AttributeError, match=rf"'{pattern}' is not in the guaranteed subset.*docs/namespace"):
        getattr(getattr(xp, extension), name)


@dataclasses.dataclass
class _Layer:
    label: str
    weights: Any


def test_namespace_of_pytree_uses_first_array_leaf() -> None:
    assert namespace({"a": "label", "b": [None, 3.0, np.ones(2)]}).name == "numpy"
    assert namespace([_Layer("dense", np.ones(2))]).name == "numpy"
    if is_installed("torch"):
        import torch

        assert namespace([{"w": torch.ones(2)}, np.ones(2)]).name == "torch"


@pytest.mark.parametrize("value", [1.0, [1.0, 2.0], "text", {}, {"a": 1, "b": [2.0]}, None])
def test_namespace_without_an_array_raises(value: Any) -> None:
    with pytest.raises(ug.InvalidParamsError, match="needs an array") as info:
        namespace(value)
    assert isinstance(info.value, TypeError)


def test_cumulative_sum_needs_axis_beyond_one_dimension(array_backend: str) -> None:
    xp = _namespace_of(array_backend)
    with pytest.raises(ValueError, match="axis"):
        xp.cumulative_sum(make(array_backend, INPUTS["m"]))


def test_torch_asarray_uses_the_default_device() -> None:
    require("torch")
    import torch

    xp = _namespace_of("torch")
    with torch.device("meta"):
        assert xp.asarray(np.ones(2)).device.type == "meta"
        assert xp.asarray([1.0, 2.0]).device.type == "meta"
    on_cpu = torch.ones(2)
    assert xp.asarray(on_cpu) is on_cpu


def test_torch_asarray_of_a_tensor_keeps_the_graph_without_a_warning() -> None:
    """Before torch 2.13, ``torch.asarray(t)`` cut ``t`` from the graph (the gradient through
    ``xp.asarray(x)`` was 0 on the H200's torch 2.11); 2.13 keeps it and warns. Ours does neither."""
    require("torch")
    import torch

    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    xp = _namespace_of("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads = ug.grad(lambda p: xp.sum(xp.asarray(p, dtype=torch.float64) ** 2), x)
        copied = xp.asarray(x, copy=True)
    np.testing.assert_allclose(grads.numpy(), [2.0, -4.0, 6.0])
    assert copied is not x and copied.grad_fn is not None
    assert xp.asarray(x, device="meta").device.type == "meta"
    with pytest.raises(ValueError, match="copy=False"):
        xp.asarray(x, dtype=torch.float64, copy=False)


def test_numpy_namespace_imports_no_framework() -> None:
    script = textwrap.dedent(
        """
        import sys
        import unigrad._namespace
        assert not any(m.startswith("array_api_compat") for m in sys.modules), "eager array_api_compat"
        import numpy as np
        from unigrad._namespace import namespace
        xp = namespace({"w": np.ones(2)})
        float(xp.logsumexp(xp.matmul(np.eye(2), xp.asarray([1.0, 2.0]))))
        heavy = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("torch", "tensorflow", "jax") or m.startswith("array_api_compat.torch")
        )
        print(heavy)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module_name", ["unigrad._namespace", "unigrad._namespace._gaps"])
def test_docstring_examples(module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
