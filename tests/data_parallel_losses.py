"""Per-example losses for the data-parallel tests, importable by worker processes by name."""

from __future__ import annotations

from typing import Any

import numpy as np

import unigrad as ug


def logistic_losses(params: Any, batch: Any) -> Any:
    """Logistic regression: one loss per example."""
    xp = ug.namespace(params)
    margin = (xp.matmul(batch["x"], params["w"]) + params["b"]) * batch["y"]
    return xp.log1p(xp.exp(-margin))


def mlp_losses(params: Any, batch: Any) -> Any:
    """A two-layer tanh MLP with squared error: one loss per example."""
    xp = ug.namespace(params)
    hidden = xp.tanh(xp.matmul(batch["x"], params["w1"]) + params["b1"])
    return (xp.matmul(hidden, params["w2"]) - batch["y"]) ** 2


def mean_loss(params: Any, batch: Any) -> Any:
    """Not per-example: the mean of the squared errors (the step must refuse it)."""
    xp = ug.namespace(params)
    return xp.mean(mlp_losses(params, batch))


def mlp_problem(dtype: str = "float64", examples: int = 7, seed: int = 0) -> tuple[dict, dict]:
    """NumPy params and batch for :func:`mlp_losses`."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(size=(3, 5)),
        "b1": rng.normal(size=5),
        "w2": rng.normal(size=5),
    }
    batch = {"x": rng.normal(size=(examples, 3)), "y": rng.normal(size=examples)}
    cast = {k: v.astype(dtype) for k, v in params.items()}, {k: v.astype(dtype) for k, v in batch.items()}
    return cast


def logistic_problem(dtype: str = "float64", examples: int = 7, seed: int = 1) -> tuple[dict, dict]:
    """NumPy params and batch for :func:`logistic_losses` (labels in {-1, +1})."""
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=4).astype(dtype), "b": np.asarray(0.1, dtype)}
    batch = {
        "x": rng.normal(size=(examples, 4)).astype(dtype),
        "y": rng.choice([-1.0, 1.0], examples).astype(dtype),
    }
    return params, batch


def losses_raising_on_rank_1(params: Any, batch: Any) -> Any:
    """:func:`mlp_losses`, except that the worker process of rank 1 (torch's process group or JAX's
    ``jax.process_index()``) raises ``ValueError`` first: a user's bug on one worker, which the launcher
    must report rather than its peer's lost connection."""
    import sys

    rank = 0
    if "torch.distributed" in sys.modules and sys.modules["torch.distributed"].is_initialized():
        rank = sys.modules["torch.distributed"].get_rank()
    elif "jax" in sys.modules:
        import jax

        rank = jax.process_index()
    if rank == 1:
        raise ValueError("boom on rank 1")
    return mlp_losses(params, batch)
