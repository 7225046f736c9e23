"""Per-example losses that ``unigrad check --world-size N`` runs data-parallel on every engine.

Each case is a top-level function (so worker processes import it by name) written once with
``ug.namespace``, returning one loss per example, and a function making its params and batch.

Example:
    >>> import numpy as np
    >>> from unigrad.distributed.cases import CASES
    >>> sorted(CASES)
    ['dp_linear_regression', 'dp_logistic_regression', 'dp_mlp', 'dp_softmax_classifier']
    >>> loss, inputs = CASES["dp_mlp"]
    >>> params, batch = inputs(np.random.default_rng(0), "float32", 7)
    >>> loss(params, batch).shape
    (7,)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from unigrad._namespace import namespace

Inputs = Callable[[np.random.Generator, str, int], tuple[dict[str, Any], dict[str, Any]]]


def linear_regression(params: Any, batch: Any) -> Any:
    """Squared error of a linear model."""
    xp = namespace(params)
    return (xp.matmul(batch["x"], params["w"]) + params["b"] - batch["y"]) ** 2


def logistic_regression(params: Any, batch: Any) -> Any:
    """Binary cross-entropy from logits (labels 0 or 1), in the stable softplus form."""
    xp = namespace(params)
    logits = xp.matmul(batch["x"], params["w"]) + params["b"]
    return xp.softplus(logits) - batch["y"] * logits


def softmax_classifier(params: Any, batch: Any) -> Any:
    """Cross-entropy of a linear softmax classifier (one-hot labels)."""
    xp = namespace(params)
    logits = xp.matmul(batch["x"], params["w"]) + params["b"]
    return -xp.sum(batch["onehot"] * xp.log_softmax(logits, axis=-1), axis=-1)


def mlp(params: Any, batch: Any) -> Any:
    """Squared error of a two-layer tanh MLP."""
    xp = namespace(params)
    hidden = xp.tanh(xp.matmul(batch["x"], params["w1"]) + params["b1"])
    return (xp.matmul(hidden, params["w2"]) + params["b2"] - batch["y"]) ** 2


def _regression(rng: np.random.Generator, dtype: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"w": rng.normal(size=4), "b": np.asarray(0.3)}
    return _cast(params, {"x": rng.normal(size=(n, 4)), "y": rng.normal(size=n)}, dtype)


def _binary(rng: np.random.Generator, dtype: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"w": rng.normal(size=4), "b": np.asarray(-0.2)}
    return _cast(params, {"x": rng.normal(size=(n, 4)), "y": rng.integers(0, 2, n).astype(float)}, dtype)


def _classes(rng: np.random.Generator, dtype: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    onehot = np.eye(3)[rng.integers(0, 3, n)]
    return _cast(params, {"x": rng.normal(size=(n, 4)), "onehot": onehot}, dtype)


def _mlp(rng: np.random.Generator, dtype: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {
        "w1": rng.normal(size=(4, 8)),
        "b1": rng.normal(size=8),
        "w2": rng.normal(size=8),
        "b2": np.asarray(0.1),
    }
    return _cast(params, {"x": rng.normal(size=(n, 4)), "y": rng.normal(size=n)}, dtype)


def _cast(params: dict[str, Any], batch: dict[str, Any], dtype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {k: np.asarray(v, dtype) for k, v in params.items()}, {
        k: np.asarray(v, dtype) for k, v in batch.items()
    }


#: name -> (per-example loss, inputs(rng, dtype, examples))
CASES: dict[str, tuple[Callable[[Any, Any], Any], Inputs]] = {
    "dp_linear_regression": (linear_regression, _regression),
    "dp_logistic_regression": (logistic_regression, _binary),
    "dp_softmax_classifier": (softmax_classifier, _classes),
    "dp_mlp": (mlp, _mlp),
}
