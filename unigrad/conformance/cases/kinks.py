"""Kinks, ties and singular points: where frameworks are free to choose a (sub)gradient.

Finite differences are meaningless here, so each case states the convention unigrad takes as the
reference in ``expected_grad`` (the value most frameworks return, or the minimal-norm subgradient)
and, in ``valid_grads``, every gradient that is correct there (the subdifferential; away from the
kink only the ordinary derivative). A backend that picks another valid value is ``known`` with its
version and choice in the reason (frameworks change their choice between releases); one outside
the set fails unless it is declared in ``known_differences`` (nan where a finite answer exists).
These cases are the data behind the docs page "Known differences".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case, KnownDifference
from unigrad.conformance.ops.valid import one_unit_per_tie, ties_share_one_unit
from unigrad.conformance.subgradients import NormAtMost, Subdifferential, interval, one_of

KINK = ("kink",)


def _values(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def _binary_tie_valid(p: Any, x_wins: np.ndarray) -> Subdifferential:
    """maximum/minimum(x, y): the winning side gets 1; at a tie the sides share one unit."""
    tie = p["x"] == p["y"]
    y_wins = ~x_wins & ~tie
    return Subdifferential(
        {"x": interval(x_wins, x_wins | tie), "y": interval(y_wins, y_wins | tie)},
        sums=one_unit_per_tie(tie, ("x", "y")),
    )


def _norm_valid(p: Any, d: Any) -> Subdifferential:
    """||x|| + sum(y): at x = 0 the unit ball (nan is not in it), else x / ||x||; y gets 1."""
    norm = np.linalg.norm(p["x"])
    if norm > 0:
        return Subdifferential({"x": one_of(p["x"] / norm), "y": one_of(1.0)})
    ball = NormAtMost({"x": np.ones_like(p["x"]), "y": np.zeros_like(p["y"])}, 1.0)
    return Subdifferential({"x": interval(-1.0, 1.0), "y": one_of(1.0)}, norms=(ball,))


def _relu_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.relu(p["x"]))


def _abs_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.abs(p["x"]))


def _maximum_tie_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.maximum(p["x"], p["y"]))


def _minimum_tie_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.minimum(p["x"], p["y"]))


def _clip_at_bounds_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.clip(p["x"], -1.0, 1.0))


def _max_ties_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.max(p["x"])


def _max_axis_ties_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.max(p["x"], axis=1))


def _min_ties_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.min(p["x"])


def _sqrt_at_zero_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.sqrt(p["x"]))


def _norm_at_zero_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.linalg.vector_norm(p["x"]) + xp.sum(p["y"])


def _where_unsafe_branch_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    # The untaken branch sqrt(x) is nan-gradient at x < 0; 0 * nan = nan leaks through `where`.
    return xp.sum(xp.where(p["x"] > 0, xp.sqrt(p["x"]), 0.0 * p["x"]))


def _sign_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.sign(p["x"]) * d["w"])


def _pow_zero_base_loss(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.pow(p["x"], 2.0))


TIE_X = _values(0.0, 1.0, -1.0, 2.0)

CASES: list[Case] = [
    Case(
        "kink_relu_at_zero",
        ("kink", "elementwise"),
        _relu_loss,
        lambda rng: ({"x": _values(0.0, 0.0, 1.5, -1.5)}, None),
        expected_grad=lambda p, d: {"x": (p["x"] > 0).astype(np.float64)},
        convention="relu'(0) = 0",
        valid_grads=lambda p, d: {"x": interval(p["x"] > 0, p["x"] >= 0)},
    ),
    Case(
        "kink_abs_at_zero",
        ("kink", "elementwise"),
        _abs_loss,
        lambda rng: ({"x": _values(0.0, 0.0, 1.5, -1.5)}, None),
        expected_grad=lambda p, d: {"x": np.sign(p["x"])},
        convention="abs'(0) = 0 (sign(0))",
        # JAX's abs rule selects +1 for x >= 0 (abs'(0) = 1): valid, as is anything in [-1, 1].
        valid_grads=lambda p, d: {
            "x": interval(np.where(p["x"] > 0, 1.0, -1.0), np.where(p["x"] < 0, -1.0, 1.0))
        },
    ),
    Case(
        "kink_sign",
        ("kink", "elementwise"),
        _sign_loss,
        lambda rng: ({"x": _values(0.0, 0.5, -0.5)}, {"w": _values(1.0, 2.0, 3.0)}),
        expected_grad=lambda p, d: {"x": np.zeros(3)},
        convention="sign'(x) = 0 everywhere, including 0",
        valid_grads=lambda p, d: {"x": one_of(0.0)},
    ),
    Case(
        "kink_maximum_tie",
        ("kink", "binary"),
        _maximum_tie_loss,
        lambda rng: ({"x": TIE_X, "y": _values(0.0, 1.0, 0.0, 3.0)}, None),
        expected_grad=lambda p, d: {
            "x": np.where(p["x"] > p["y"], 1.0, np.where(p["x"] == p["y"], 0.5, 0.0)),
            "y": np.where(p["y"] > p["x"], 1.0, np.where(p["x"] == p["y"], 0.5, 0.0)),
        },
        convention="maximum(x, y) at x == y: the gradient is split 1/2 and 1/2",
        # tf.maximum sends the whole gradient to x where x >= y (1 and 0 at a tie): valid.
        valid_grads=lambda p, d: _binary_tie_valid(p, p["x"] > p["y"]),
    ),
    Case(
        "kink_minimum_tie",
        ("kink", "binary"),
        _minimum_tie_loss,
        lambda rng: ({"x": TIE_X, "y": _values(0.0, 1.0, 0.0, 3.0)}, None),
        expected_grad=lambda p, d: {
            "x": np.where(p["x"] < p["y"], 1.0, np.where(p["x"] == p["y"], 0.5, 0.0)),
            "y": np.where(p["y"] < p["x"], 1.0, np.where(p["x"] == p["y"], 0.5, 0.0)),
        },
        convention="minimum(x, y) at x == y: the gradient is split 1/2 and 1/2",
        # tf.minimum sends the whole gradient to x where x <= y (1 and 0 at a tie): valid.
        valid_grads=lambda p, d: _binary_tie_valid(p, p["x"] < p["y"]),
    ),
    Case(
        "kink_clip_at_bounds",
        ("kink", "select"),
        _clip_at_bounds_loss,
        lambda rng: ({"x": _values(-1.0, 1.0, 0.5, 2.0, -2.0)}, None),
        expected_grad=lambda p, d: {"x": ((p["x"] >= -1.0) & (p["x"] <= 1.0)).astype(np.float64)},
        convention="clip(x, lo, hi) at x == lo or x == hi: gradient 1 (the bound is inside the range)",
        # jnp.clip is maximum/minimum against the bound and JAX splits ties (1/2 at a bound); torch
        # 2.14 returns 0 at a bound where 2.13 returned 1. All are valid.
        valid_grads=lambda p, d: {"x": interval(np.abs(p["x"]) < 1.0, np.abs(p["x"]) <= 1.0)},
    ),
    Case(
        "kink_max_ties",
        ("kink", "reduction"),
        _max_ties_loss,
        lambda rng: ({"x": _values(1.0, 3.0, 3.0, -2.0)}, None),
        expected_grad=lambda p, d: {"x": _values(0.0, 0.5, 0.5, 0.0)},
        convention="max over tied elements: the gradient is shared equally among them",
        valid_grads=lambda p, d: ties_share_one_unit(p["x"] == p["x"].max()),
    ),
    Case(
        "kink_max_axis_ties",
        ("kink", "reduction"),
        _max_axis_ties_loss,
        lambda rng: ({"x": np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])}, None),
        expected_grad=lambda p, d: {"x": np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])},
        convention="max along an axis over tied elements: the gradient is shared equally",
        valid_grads=lambda p, d: ties_share_one_unit(
            p["x"] == p["x"].max(axis=1, keepdims=True), groups=np.indices(p["x"].shape)[0]
        ),
    ),
    Case(
        "kink_min_ties",
        ("kink", "reduction"),
        _min_ties_loss,
        lambda rng: ({"x": _values(-1.0, 3.0, -1.0, -1.0)}, None),
        expected_grad=lambda p, d: {"x": np.array([1.0, 0.0, 1.0, 1.0]) / 3.0},
        convention="min over tied elements: the gradient is shared equally among them",
        valid_grads=lambda p, d: ties_share_one_unit(p["x"] == p["x"].min()),
    ),
    Case(
        "kink_sqrt_at_zero",
        ("kink", "elementwise", "singular"),
        _sqrt_at_zero_loss,
        lambda rng: ({"x": _values(0.0, 1.0, 4.0)}, None),
        expected_grad=lambda p, d: {"x": _values(np.inf, 0.5, 0.25)},
        convention="sqrt'(0) = +inf (the one-sided limit); no framework regularises it",
        valid_grads=lambda p, d: {"x": one_of(np.where(p["x"] == 0, np.inf, 0.5 / np.sqrt(p["x"])))},
        dtypes=("float64", "float32", "float16"),
    ),
    Case(
        "kink_norm_at_zero",
        ("kink", "reduction", "norm"),
        _norm_at_zero_loss,
        lambda rng: ({"x": np.zeros(3), "y": _values(1.0, 2.0)}, None),
        expected_grad=lambda p, d: {"x": np.zeros(3), "y": np.ones(2)},
        convention="the 2-norm at the zero vector: gradient 0 (the minimal-norm subgradient)",
        valid_grads=_norm_valid,
        known_differences=(
            KnownDifference(
                ("tensorflow", "jax"),
                "the norm's gradient x / ||x|| is evaluated as 0 / 0 = nan; "
                "torch masks the zero norm and returns 0",
            ),
        ),
    ),
    Case(
        "kink_where_unsafe_branch",
        ("kink", "select", "nan"),
        _where_unsafe_branch_loss,
        lambda rng: ({"x": _values(-1.0, 0.0, 4.0)}, None),
        expected_grad=lambda p, d: {"x": _values(0.0, 0.0, 0.25)},
        convention=(
            "where(c, f(x), g(x)) differentiates only the taken branch; mathematically the untaken "
            "sqrt at x <= 0 contributes nothing"
        ),
        valid_grads=lambda p, d: {"x": one_of(np.where(p["x"] > 0, 0.5 / np.sqrt(np.abs(p["x"])), 0.0))},
        known_differences=(
            KnownDifference(
                ("torch", "jax"),
                "the untaken branch's local derivative (inf or nan) times the zero cotangent gives nan; "
                "TensorFlow's gradient kernels return 0 for a zero cotangent, so only TF gives 0. "
                "Portable fix: make the untaken branch safe, e.g. sqrt(where(x > 0, x, 1))",
            ),
        ),
    ),
    Case(
        "kink_pow_zero_base",
        ("kink", "elementwise"),
        _pow_zero_base_loss,
        lambda rng: ({"x": _values(0.0, 1.0, -2.0)}, None),
        expected_grad=lambda p, d: {"x": 2.0 * p["x"]},
        convention="d/dx x^2 at x = 0 is 0 (no nan from log(0) in the exponent's path)",
        valid_grads=lambda p, d: {"x": one_of(2.0 * p["x"])},
    ),
]
