"""Test-only helpers: make arrays of a framework from NumPy, read them back, and a few ops.

The library's own neutral namespace is tested separately; these helpers keep the core tests
independent of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make(backend: str, values: Any, dtype: str | None = None) -> Any:
    """A framework array holding ``values`` (cast to ``dtype`` when given)."""
    array = np.asarray(values, dtype=dtype)
    if backend == "torch":
        import torch

        return torch.tensor(array)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.constant(array)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(array)
    if backend == "mlx":
        import mlx.core as mx

        # An explicit dtype: mx.array(float64 NumPy) alone would be float32. MLX has no complex128.
        name = {"bool": "bool_", "complex128": "complex64"}.get(array.dtype.name, array.dtype.name)
        return mx.array(array, dtype=getattr(mx, name))
    if backend == "numpy":
        return array
    raise ValueError(backend)


def to_numpy(x: Any) -> np.ndarray:
    """The values of any framework's array as float64 NumPy (bfloat16 included)."""
    module = type(x).__module__
    if module.startswith("torch"):
        return x.detach().cpu().double().numpy()
    if module.startswith("mlx"):
        import mlx.core as mx

        return np.array(x.astype(mx.float64))
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        import tensorflow as tf

        return tf.cast(x, tf.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def dtype_name(x: Any) -> str:
    dtype = x.dtype
    return getattr(dtype, "name", None) or str(dtype).removeprefix("torch.").removeprefix("mlx.core.")


class Ops:
    """The handful of operations the core tests need, for one backend."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        if backend == "torch":
            import torch

            self.sum = torch.sum
            self.mean = torch.mean
            self.exp = torch.exp
            self.tanh = torch.tanh
            self.matmul = torch.matmul
            self.logsumexp = lambda x, axis: torch.logsumexp(x, dim=axis, keepdim=True)
            self.gather_rows = lambda x, idx: x[idx]
        elif backend == "tensorflow":
            import tensorflow as tf

            self.sum = tf.reduce_sum
            self.mean = tf.reduce_mean
            self.exp = tf.exp
            self.tanh = tf.tanh
            self.matmul = tf.matmul
            self.logsumexp = lambda x, axis: tf.reduce_logsumexp(x, axis=axis, keepdims=True)
            self.gather_rows = tf.gather
        elif backend == "jax":
            import jax
            import jax.numpy as jnp

            self.sum = jnp.sum
            self.mean = jnp.mean
            self.exp = jnp.exp
            self.tanh = jnp.tanh
            self.matmul = jnp.matmul
            self.logsumexp = lambda x, axis: jax.nn.logsumexp(x, axis=axis, keepdims=True)
            self.gather_rows = lambda x, idx: x[idx]
        elif backend == "mlx":
            import mlx.core as mx

            self.sum = mx.sum
            self.mean = mx.mean
            self.exp = mx.exp
            self.tanh = mx.tanh
            self.matmul = mx.matmul
            self.logsumexp = lambda x, axis: mx.logsumexp(x, axis=axis, keepdims=True)
            self.gather_rows = lambda x, idx: x[mx.array(idx)]
        else:
            self.sum = np.sum
            self.mean = np.mean
            self.exp = np.exp
            self.tanh = np.tanh
            self.matmul = np.matmul

            def logsumexp(x: Any, axis: int) -> Any:
                top = np.max(x, axis=axis, keepdims=True)
                return top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))

            self.logsumexp = logsumexp
            self.gather_rows = lambda x, idx: x[idx]

    def mlp_loss(self, params: dict[str, Any], data: dict[str, Any]) -> Any:
        """Two-layer tanh MLP with softmax cross-entropy against one-hot labels."""
        hidden = self.tanh(self.matmul(data["x"], params["w1"]) + params["b1"])
        logits = self.matmul(hidden, params["w2"]) + params["b2"]
        log_probs = logits - self.logsumexp(logits, axis=1)
        return -self.mean(self.sum(log_probs * data["onehot"], 1))


#: Backends whose float64 transcendental ops are float32 approximations: the namespace functions
#: affected, and the rtol float64 values and gradients through them meet there. MLX: exp, sin, cos
#: and erf (ml-explore/mlx issue #3047; declared known differences in the conformance catalogue,
#: measured there at 7e-8 to 4e-7 on gradients). Every other backend is exact to float64 round-off.
FLOAT64_APPROXIMATIONS: dict[str, tuple[frozenset[str], float]] = {
    "mlx": (
        frozenset(
            {"exp", "sin", "cos", "tan", "erf", "sigmoid", "softplus", "logaddexp", "logsumexp"}
            | {"log_softmax", "softmax"}
        ),
        1e-5,
    ),
}

#: dtypes a backend does not have (tests that need them skip there, saying so).
MISSING_DTYPES: dict[str, frozenset[str]] = {"mlx": frozenset({"complex128"})}


def float64_rtol(backend: str, op: str | None = None, exact: float = 1e-12) -> float:
    """rtol for a float64 result of ``backend`` against NumPy's: ``exact`` unless the result goes
    through a float32-approximated op there (``op=None``: a loss that may use any of them)."""
    ops, rtol = FLOAT64_APPROXIMATIONS.get(backend, (frozenset(), exact))
    return rtol if (op is None and ops) or op in ops else exact


def tolerance(dtype: str) -> dict[str, float]:
    """rtol/atol for comparing a backend's gradient with a float64 reference."""
    return {"float64": {"rtol": 1e-6, "atol": 1e-9}, "float32": {"rtol": 2e-4, "atol": 1e-5}}[dtype]
