"""Loss-function cases: the objectives models are trained with, in their numerically stable forms.

Piecewise losses (Huber, hinge) are evaluated away from their kinks, so finite differences and every
backend's derivative rule agree; the generators resample until that holds with a margin wide enough
for bfloat16 round-off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case


def _linear(xp: Any, params: Any, x: Any) -> Any:
    return xp.matmul(x, params["w"]) + params["b"]


def _mse_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.mean(xp.square(_linear(xp, params, data["x"]) - data["y"]))


def _mse_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.normal(size=(20, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=20)
    return {"w": rng.normal(size=3), "b": np.array(0.0)}, {"x": x, "y": y}


def _softmax_cross_entropy_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    log_probs = xp.log_softmax(_linear(xp, params, data["x"]), axis=-1)
    return -xp.mean(xp.sum(data["one_hot"] * log_probs, axis=-1))


def _softmax_cross_entropy_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    labels = rng.integers(0, 5, size=8)
    data = {"x": rng.normal(size=(8, 4)), "one_hot": np.eye(5)[labels]}
    return {"w": rng.normal(size=(4, 5)), "b": rng.normal(size=5) * 0.1}, data


def _binary_cross_entropy_loss(params: Any, data: Any = None) -> Any:
    # max(z, 0) - z·y + log(1 + e^-|z|): never exponentiates a large positive number.
    xp = namespace(params)
    z = _linear(xp, params, data["x"])
    per_example = xp.relu(z) - z * data["y"] + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.mean(per_example)


def _binary_cross_entropy_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.normal(size=(16, 3))
    y = (x @ np.array([2.0, -1.0, 0.5]) + 0.5 * rng.normal(size=16) > 0).astype(np.float64)
    # Weights large enough that some logits reach |z| ~ 5, where the stable form matters.
    return {"w": rng.normal(size=3) * 2.0, "b": np.array([0.2])}, {"x": x, "y": y}


HUBER_DELTA = 1.0


def _huber_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    residual = params["prediction"] - data["target"]
    size = xp.abs(residual)
    quadratic = 0.5 * xp.square(residual)
    linear = HUBER_DELTA * (size - 0.5 * HUBER_DELTA)
    return xp.mean(xp.where(size <= HUBER_DELTA, quadratic, linear))


def _huber_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Half the residuals inside the quadratic zone, half in the linear one, none within 0.2 of ±delta.
    inside = rng.uniform(0.1, 0.8, size=6) * HUBER_DELTA
    outside = rng.uniform(1.2, 3.0, size=6) * HUBER_DELTA
    residual = np.concatenate([inside, outside]) * rng.choice([-1.0, 1.0], size=12)
    target = rng.normal(size=12)
    return {"prediction": target + residual}, {"target": target}


def _kl_divergence_loss(params: Any, data: Any = None) -> Any:
    # KL(p ‖ q) row by row, with p = softmax(a), q = softmax(b); both distributions are trained.
    xp = namespace(params)
    log_p = xp.log_softmax(params["a"], axis=-1)
    log_q = xp.log_softmax(params["b"], axis=-1)
    return xp.mean(xp.sum(xp.softmax(params["a"], axis=-1) * (log_p - log_q), axis=-1))


def _kl_divergence_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(4, 5)), "b": rng.normal(size=(4, 5))}, None


def _nll_loss(params: Any, data: Any = None) -> Any:
    # Picks log p[i, label_i] with one gather on the flattened rows (no fancy indexing).
    xp = namespace(params)
    log_probs = xp.log_softmax(params["logits"], axis=-1)
    picked = xp.take(xp.reshape(log_probs, (-1,)), data["flat_index"], axis=0)
    return -xp.mean(picked)


def _nll_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    rows, classes = 6, 5
    labels = rng.integers(0, classes, size=rows)
    flat_index = (np.arange(rows) * classes + labels).astype(np.int64)
    return {"logits": rng.normal(size=(rows, classes))}, {"flat_index": flat_index}


HINGE_MARGIN = 0.1


def _hinge_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.mean(xp.relu(1.0 - data["y"] * _linear(xp, params, data["x"])))


def _hinge_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Resample until no example sits within HINGE_MARGIN of the kink at y·z = 1.
    while True:
        params = {"w": rng.normal(size=3), "b": np.array([0.1])}
        x = rng.normal(size=(12, 3))
        y = rng.choice([-1.0, 1.0], size=12)
        margins = y * (x @ params["w"] + params["b"])
        active = margins < 1.0
        if np.all(np.abs(margins - 1.0) > HINGE_MARGIN) and 3 <= active.sum() <= 9:
            return params, {"x": x, "y": y}


def _cosine_similarity_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    a, b = params["a"], data["b"]
    dot = xp.sum(a * b, axis=-1)
    norms = xp.linalg.vector_norm(a, axis=-1) * xp.linalg.vector_norm(b, axis=-1)
    return xp.mean(1.0 - dot / norms)


def _cosine_similarity_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Rows of ``a`` centred on (1, 1, 1, 1): norms ~2, far from zero where the cosine is undefined.
    return {"a": rng.normal(size=(5, 4)) + 1.0}, {"b": rng.normal(size=(5, 4))}


def _logistic_regression_loss(params: Any, data: Any = None) -> Any:
    # Mean -log σ(s·z) with s = ±1, written as softplus(-s·z), plus a small L2 penalty.
    xp = namespace(params)
    z = _linear(xp, params, data["x"])
    return xp.mean(xp.softplus(-data["sign"] * z)) + 0.01 * xp.sum(xp.square(params["w"]))


def _logistic_regression_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Two overlapping Gaussian blobs of 20 points in 3-D.
    centres = np.array([[1.0, 0.5, -0.5], [-1.0, -0.5, 0.5]])
    labels = np.repeat([0, 1], 20)
    x = centres[labels] + rng.normal(size=(40, 3))
    sign = np.where(labels == 0, 1.0, -1.0)
    return {"w": rng.normal(size=3) * 0.5, "b": np.array(0.0)}, {"x": x, "sign": sign}


CASES: list[Case] = [
    Case("loss_mse", ("loss", "reduction"), _mse_loss, _mse_inputs),
    Case(
        "loss_softmax_cross_entropy",
        ("loss", "softmax"),
        _softmax_cross_entropy_loss,
        _softmax_cross_entropy_inputs,
    ),
    Case(
        "loss_binary_cross_entropy_logits",
        ("loss", "stable"),
        _binary_cross_entropy_loss,
        _binary_cross_entropy_inputs,
    ),
    Case("loss_huber", ("loss", "piecewise"), _huber_loss, _huber_inputs),
    Case("loss_kl_divergence", ("loss", "softmax"), _kl_divergence_loss, _kl_divergence_inputs),
    Case("loss_nll_take", ("loss", "indexing"), _nll_loss, _nll_inputs),
    Case("loss_hinge", ("loss", "piecewise"), _hinge_loss, _hinge_inputs),
    Case("loss_cosine_similarity", ("loss", "norm"), _cosine_similarity_loss, _cosine_similarity_inputs),
    Case(
        "loss_logistic_regression",
        ("loss", "regression"),
        _logistic_regression_loss,
        _logistic_regression_inputs,
    ),
]
