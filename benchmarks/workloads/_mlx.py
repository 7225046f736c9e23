"""MLX workloads: losses with ``mlx.core``; the native is ``mx.value_and_grad`` with ``mx.eval``.

MLX evaluates lazily, so every step (native and unigrad alike) ends with ``mx.eval`` of its result:
the clock then measures the computation, not the building of a graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from benchmarks.workloads import Step


def convert(tree: Any, *, trainable: bool, device: str = "cpu") -> Any:
    """NumPy -> ``mx.array`` of the same dtype (MLX arrays carry no trainable flag and no device:
    the default device, the CPU in the Linux build, runs them)."""
    del trainable, device
    if isinstance(tree, dict):
        return {key: mx.array(value, dtype=getattr(mx, value.dtype.name)) for key, value in tree.items()}
    return mx.array(tree, dtype=getattr(mx, tree.dtype.name))


def _layer_norm(x: mx.array, scale: mx.array, bias: mx.array) -> mx.array:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) * mx.rsqrt(variance + 1e-5) * scale + bias


def make_loss(problem: str, *, heads: int = 4) -> Callable[..., Any]:
    """The loss of ``problem`` written with MLX ops."""

    def tiny(x: mx.array, data: Any = None) -> mx.array:
        return (x**2).sum()

    def mlp(p: dict[str, mx.array], data: dict[str, mx.array]) -> mx.array:
        hidden = mx.tanh(data["x"] @ p["w1"] + p["b1"])
        logits = hidden @ p["w2"] + p["b2"]
        log_probs = logits - mx.logsumexp(logits, axis=1, keepdims=True)
        return -mx.take_along_axis(log_probs, data["y"][:, None], axis=1).mean()

    def pytree(p: dict[str, mx.array], data: Any = None) -> mx.array:
        return (mx.concatenate(list(p.values())) ** 2).sum()

    def transformer(p: dict[str, mx.array], data: dict[str, mx.array]) -> mx.array:
        x = data["x"]
        batch, seq, d_model = x.shape
        head_dim = d_model // heads
        h = _layer_norm(x, p["ln1_scale"], p["ln1_bias"])

        def split(t: mx.array) -> mx.array:  # (batch, heads, seq, head_dim), as MLX's attention takes
            return t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)

        q, k, v = split(h @ p["wq"]), split(h @ p["wk"]), split(h @ p["wv"])
        attended = mx.fast.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(head_dim))
        x = x + attended.transpose(0, 2, 1, 3).reshape(batch, seq, d_model) @ p["wo"]
        h = _layer_norm(x, p["ln2_scale"], p["ln2_bias"])
        hidden = h @ p["w1"] + p["b1"]
        gelu = hidden * 0.5 * (1 + mx.erf(hidden / math.sqrt(2.0)))
        x = x + gelu @ p["w2"] + p["b2"]
        return ((x - data["y"]) ** 2).mean()

    def big(p: dict[str, mx.array], data: dict[str, mx.array]) -> mx.array:
        return ((mx.tanh(data["x"] @ p["w1"]) @ p["w2"]) ** 2).mean()

    losses = {"tiny": tiny, "mlp": mlp, "pytree": pytree, "transformer": transformer, "big": big}
    return losses[problem]


def native_steps(loss_fn: Callable[..., Any], params: Any, data: Any) -> dict[str, Step]:
    """``mx.value_and_grad`` built once, called eagerly, results evaluated."""
    value_and_grad = mx.value_and_grad(loss_fn)

    def step() -> tuple[Any, Any]:
        result = value_and_grad(params, data)
        mx.eval(result)
        return result

    return {"mx.value_and_grad": step}


def compiled_native_steps(loss_fn: Callable[..., Any], params: Any, data: Any) -> dict[str, Step]:
    """``mx.compile(mx.value_and_grad(loss_fn))``, results evaluated (not yet called: the first call
    compiles)."""
    compiled = mx.compile(mx.value_and_grad(loss_fn))

    def step() -> tuple[Any, Any]:
        result = compiled(params, data)
        mx.eval(result)
        return result

    return {"mx.compile(mx.value_and_grad)": step}


def sync(result: Any, device: str = "cpu") -> Any:
    """Evaluate every array of ``result`` (MLX is lazy: nothing ran before this)."""
    del device
    mx.eval(result)
    return result
