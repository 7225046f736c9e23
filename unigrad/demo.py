"""Side-by-side demonstration: one loss, its gradients from every installed backend.

Run ``python -m unigrad.demo``. The loss is a small MLP with softmax cross-entropy written once in
NumPy style per backend; each backend's gradients are compared with the float64 finite-difference
reference and with each other.

Example:
    >>> from unigrad.demo import demo_rows
    >>> rows = demo_rows(["numpy"])
    >>> rows[0]["backend"]
    'numpy'
"""

from __future__ import annotations

from typing import Any

import numpy as np

import unigrad as ug


def _ops(backend: str) -> dict[str, Any]:
    if backend == "torch":
        import torch

        return {
            "tanh": torch.tanh,
            "lse": lambda z: torch.logsumexp(z, 1, keepdim=True),
            "mean": torch.mean,
            "sum": torch.sum,
        }
    if backend == "tensorflow":
        import tensorflow as tf

        return {
            "tanh": tf.tanh,
            "lse": lambda z: tf.reduce_logsumexp(z, 1, keepdims=True),
            "mean": tf.reduce_mean,
            "sum": tf.reduce_sum,
        }
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return {
            "tanh": jnp.tanh,
            "lse": lambda z: jax.nn.logsumexp(z, 1, keepdims=True),
            "mean": jnp.mean,
            "sum": jnp.sum,
        }
    if backend != "numpy":  # any other framework (MLX...): the neutral namespace
        return {
            "tanh": lambda z: ug.namespace(z).tanh(z),
            "lse": lambda z: ug.namespace(z).logsumexp(z, axis=1, keepdims=True),
            "mean": lambda z: ug.namespace(z).mean(z),
            "sum": lambda z, axis: ug.namespace(z).sum(z, axis=axis),
        }

    def lse(z: np.ndarray) -> np.ndarray:
        top = z.max(1, keepdims=True)
        return top + np.log(np.exp(z - top).sum(1, keepdims=True))

    return {"tanh": np.tanh, "lse": lse, "mean": np.mean, "sum": np.sum}


def mlp_loss(backend: str):
    """The demo loss for ``backend``: a 2-layer MLP with softmax cross-entropy."""
    op = _ops(backend)

    def loss_fn(params: dict[str, Any], data: dict[str, Any]) -> Any:
        hidden = op["tanh"](data["x"] @ params["w1"] + params["b1"])
        logits = hidden @ params["w2"] + params["b2"]
        return -op["mean"](op["sum"]((logits - op["lse"](logits)) * data["onehot"], 1))

    return loss_fn


def demo_problem(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Float64 params and data of the demo MLP (4 inputs, 5 hidden, 3 classes, batch 8)."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(scale=0.5, size=(4, 5)),
        "b1": np.zeros(5),
        "w2": rng.normal(scale=0.5, size=(5, 3)),
        "b2": np.zeros(3),
    }
    data = {"x": rng.normal(size=(8, 4)), "onehot": np.eye(3)[rng.integers(0, 3, size=8)]}
    return params, data


def demo_rows(backends: list[str] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """One row per backend: loss, a few gradient entries, max abs difference to the reference."""
    import contextlib

    params, data = demo_problem(seed)
    reference = ug.reference_grad(mlp_loss("numpy"), params, data)
    rows = []
    for backend in backends if backends is not None else ug.installed_backends():
        context = contextlib.nullcontext()
        if backend == "jax":
            import jax

            context = jax.enable_x64(True)  # the demo compares float64 results
        with context:
            loss, grads = ug.value_and_grad(mlp_loss(backend), params, data, backend=backend)
        max_diff = max(float(np.max(np.abs(grads[k] - reference[k]))) for k in params)
        rows.append(
            {
                "backend": backend,
                "loss": float(loss),
                "dw1[0,:3]": grads["w1"][0, :3],
                "max |g - reference|": max_diff,
            }
        )
    return rows


def main() -> None:
    """Print the demo table."""
    rows = demo_rows()
    if not rows:
        print("no backend installed: pip install 'unigrad[all]'")
        return
    print("Gradients of one MLP cross-entropy loss (float64), per backend:\n")
    print(f"{'backend':<12}{'loss':>14}  {'dL/dw1[0, :3]':<40}{'max |g - fd ref|':>18}")
    for row in rows:
        grads = np.array2string(row["dw1[0,:3]"], precision=8, separator=", ")
        print(f"{row['backend']:<12}{row['loss']:>14.10f}  {grads:<40}{row['max |g - reference|']:>18.2e}")
    first = rows[0]["dw1[0,:3]"]
    spread = max(float(np.max(np.abs(r["dw1[0,:3]"] - first))) for r in rows)
    print(f"\nlargest difference between backends on dL/dw1[0, :3]: {spread:.2e}")


if __name__ == "__main__":
    main()
