"""The benchmark problems as NumPy pytrees: the same numbers are given to every backend.

Each function returns ``(params, data)``: params a pytree of float32 arrays, data a pytree of arrays
or ``None``. The backend modules convert them and define the loss on them with their own ops.
"""

from __future__ import annotations

import numpy as np

Tree = dict[str, np.ndarray]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)


def tiny(size: int) -> tuple[np.ndarray, None]:
    """``x`` with ``size`` elements (params is the bare array); the loss is ``sum(x**2)``."""
    return _normal(_rng(), (size,), 1.0), None


def mlp(batch: int = 128, sizes: tuple[int, int, int] = (784, 256, 10)) -> tuple[Tree, Tree]:
    """A two-layer perceptron (tanh) with softmax cross-entropy, params as a dict."""
    rng = _rng()
    n_in, n_hidden, n_out = sizes
    params = {
        "w1": _normal(rng, (n_in, n_hidden), n_in**-0.5),
        "b1": np.zeros(n_hidden, np.float32),
        "w2": _normal(rng, (n_hidden, n_out), n_hidden**-0.5),
        "b2": np.zeros(n_out, np.float32),
    }
    data = {"x": _normal(rng, (batch, n_in), 1.0), "y": rng.integers(0, n_out, batch).astype(np.int32)}
    return params, data


def pytree(leaves: int = 1000, size: int = 8) -> tuple[Tree, None]:
    """``leaves`` small arrays in one flat dict; the loss is ``sum(concat(leaves)**2)`` (three ops)."""
    rng = _rng()
    return {f"p{i:05d}": _normal(rng, (size,), 1.0) for i in range(leaves)}, None


def transformer(
    batch: int = 4, seq: int = 128, d_model: int = 256, heads: int = 4, d_ff: int = 1024
) -> tuple[Tree, Tree]:
    """One pre-LayerNorm transformer block (multi-head self-attention + GELU MLP), MSE to a target.

    ``heads`` only checks the shapes here: the backends' losses are built with the same count.
    """
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
    rng = _rng()
    params = {
        "ln1_scale": np.ones(d_model, np.float32),
        "ln1_bias": np.zeros(d_model, np.float32),
        "ln2_scale": np.ones(d_model, np.float32),
        "ln2_bias": np.zeros(d_model, np.float32),
        "w1": _normal(rng, (d_model, d_ff), d_model**-0.5),
        "b1": np.zeros(d_ff, np.float32),
        "w2": _normal(rng, (d_ff, d_model), d_ff**-0.5),
        "b2": np.zeros(d_model, np.float32),
    }
    for name in ("wq", "wk", "wv", "wo"):
        params[name] = _normal(rng, (d_model, d_model), d_model**-0.5)
    data = {
        "x": _normal(rng, (batch, seq, d_model), 1.0),
        "y": _normal(rng, (batch, seq, d_model), 1.0),
    }
    return params, data


def big(rows: int = 4096, hidden: int = 6144, batch: int = 16) -> tuple[Tree, Tree]:
    """Two dense layers of ``rows * hidden`` weights each (4096 x 6144: 50.3M float32 parameters).

    Filled in place (no float64 temporaries), so building them raises the peak memory by no more
    than the parameters themselves.
    """
    rng = _rng()
    params = {}
    for name, shape in (("w1", (rows, hidden)), ("w2", (hidden, rows))):
        weight = np.empty(shape, np.float32)
        rng.standard_normal(out=weight, dtype=np.float32)
        weight *= np.float32(hidden**-0.5)
        params[name] = weight
    return params, {"x": _normal(rng, (batch, rows), 1.0)}


def parameter_count(params: object) -> int:
    """Number of scalar parameters in a NumPy pytree (a bare array or a flat dict)."""
    if isinstance(params, np.ndarray):
        return int(params.size)
    assert isinstance(params, dict)
    return sum(int(leaf.size) for leaf in params.values())
