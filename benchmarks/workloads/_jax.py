"""JAX workloads: losses with ``jax.numpy``; the native is ``jax.value_and_grad`` (eager, no jit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks.workloads import Step


def convert(tree: Any, *, trainable: bool, device: str = "cpu") -> Any:
    """NumPy -> ``jax.Array`` committed to the CPU (or the first GPU with ``device="gpu"``), so a
    CPU run stays on the CPU on a machine with a GPU; JAX arrays carry no trainable flag."""
    del trainable
    target = jax.devices(device)[0]
    if isinstance(tree, dict):
        return {key: jax.device_put(jnp.asarray(value), target) for key, value in tree.items()}
    return jax.device_put(jnp.asarray(tree), target)


def _layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + 1e-5) * scale + bias


def make_loss(problem: str, *, heads: int = 4) -> Callable[..., Any]:
    """The loss of ``problem`` written with JAX ops."""

    def tiny(x: jax.Array, data: Any = None) -> jax.Array:
        return (x**2).sum()

    def mlp(p: dict[str, jax.Array], data: dict[str, jax.Array]) -> jax.Array:
        hidden = jnp.tanh(data["x"] @ p["w1"] + p["b1"])
        log_probs = jax.nn.log_softmax(hidden @ p["w2"] + p["b2"])
        return -jnp.take_along_axis(log_probs, data["y"][:, None], axis=1).mean()

    def pytree(p: dict[str, jax.Array], data: Any = None) -> jax.Array:
        return (jnp.concatenate(list(p.values())) ** 2).sum()

    def transformer(p: dict[str, jax.Array], data: dict[str, jax.Array]) -> jax.Array:
        x = data["x"]
        batch, seq, d_model = x.shape
        h = _layer_norm(x, p["ln1_scale"], p["ln1_bias"])

        def split(t: jax.Array) -> jax.Array:
            return t.reshape(batch, seq, heads, d_model // heads)

        # (batch, seq, heads, head_dim) is the layout jax.nn.dot_product_attention takes.
        q, k, v = split(h @ p["wq"]), split(h @ p["wk"]), split(h @ p["wv"])
        attended = jax.nn.dot_product_attention(q, k, v).reshape(batch, seq, d_model)
        x = x + attended @ p["wo"]
        h = _layer_norm(x, p["ln2_scale"], p["ln2_bias"])
        x = x + jax.nn.gelu(h @ p["w1"] + p["b1"], approximate=False) @ p["w2"] + p["b2"]
        return ((x - data["y"]) ** 2).mean()

    def big(p: dict[str, jax.Array], data: dict[str, jax.Array]) -> jax.Array:
        return ((jnp.tanh(data["x"] @ p["w1"]) @ p["w2"]) ** 2).mean()

    losses = {"tiny": tiny, "mlp": mlp, "pytree": pytree, "transformer": transformer, "big": big}
    return losses[problem]


def native_steps(loss_fn: Callable[..., Any], params: Any, data: Any) -> dict[str, Step]:
    """``jax.value_and_grad`` built once, called eagerly, with ``block_until_ready``."""
    value_and_grad = jax.value_and_grad(loss_fn)

    def step() -> tuple[Any, Any]:
        return jax.block_until_ready(value_and_grad(params, data))

    return {"jax.value_and_grad": step}


def sync(result: Any, device: str = "cpu") -> Any:
    """JAX dispatches asynchronously, on any device: wait for every array of ``result``."""
    del device
    return jax.block_until_ready(result)
