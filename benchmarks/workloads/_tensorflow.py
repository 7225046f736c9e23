"""TensorFlow workloads: losses with ``tf`` ops; the native is a ``GradientTape`` on watched tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from benchmarks.workloads import Step


def convert(tree: Any, *, trainable: bool, device: str = "cpu") -> Any:
    """NumPy -> ``tf.Tensor`` (``tf.convert_to_tensor``); tensors are watched, so ``trainable`` is moot.

    Only ``device="cpu"``: the GPU runs cover PyTorch and JAX (the GPU image has no TensorFlow).
    """
    del trainable
    if device != "cpu":
        raise ValueError(f"TensorFlow workloads run on the CPU only, not {device!r}")
    if isinstance(tree, dict):
        return {key: tf.convert_to_tensor(value) for key, value in tree.items()}
    return tf.convert_to_tensor(tree)


def _layer_norm(x: tf.Tensor, scale: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + 1e-5) * scale + bias


def make_loss(problem: str, *, heads: int = 4) -> Callable[..., Any]:
    """The loss of ``problem`` written with TensorFlow ops."""

    def tiny(x: tf.Tensor, data: Any = None) -> tf.Tensor:
        return tf.reduce_sum(x**2)

    def mlp(p: dict[str, tf.Tensor], data: dict[str, tf.Tensor]) -> tf.Tensor:
        hidden = tf.tanh(data["x"] @ p["w1"] + p["b1"])
        logits = hidden @ p["w2"] + p["b2"]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(data["y"], logits))

    def pytree(p: dict[str, tf.Tensor], data: Any = None) -> tf.Tensor:
        return tf.reduce_sum(tf.concat(list(p.values()), axis=0) ** 2)

    def transformer(p: dict[str, tf.Tensor], data: dict[str, tf.Tensor]) -> tf.Tensor:
        x = data["x"]
        batch, seq, d_model = x.shape
        h = _layer_norm(x, p["ln1_scale"], p["ln1_bias"])

        def split(t: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(t, (batch, seq, heads, d_model // heads)), (0, 2, 1, 3))

        q, k, v = split(h @ p["wq"]), split(h @ p["wk"]), split(h @ p["wv"])
        scores = tf.matmul(q, k, transpose_b=True) * (d_model // heads) ** -0.5
        attended = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        attended = tf.reshape(tf.transpose(attended, (0, 2, 1, 3)), (batch, seq, d_model))
        x = x + attended @ p["wo"]
        h = _layer_norm(x, p["ln2_scale"], p["ln2_bias"])
        x = x + tf.nn.gelu(h @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return tf.reduce_mean((x - data["y"]) ** 2)

    def big(p: dict[str, tf.Tensor], data: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.reduce_mean((tf.tanh(data["x"] @ p["w1"]) @ p["w2"]) ** 2)

    losses = {"tiny": tiny, "mlp": mlp, "pytree": pytree, "transformer": transformer, "big": big}
    return losses[problem]


def native_steps(loss_fn: Callable[..., Any], params: Any, data: Any) -> dict[str, Step]:
    """One ``tf.GradientTape`` per call, watching the parameter tensors."""
    is_dict = isinstance(params, dict)
    keys = list(params) if is_dict else []
    leaves = list(params.values()) if is_dict else [params]

    def tape_step() -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            loss = loss_fn(params, data)
        grads = tape.gradient(loss, leaves)
        if is_dict:
            return loss, dict(zip(keys, grads, strict=True))
        return loss, grads[0]

    return {"tf.GradientTape": tape_step}


def sync(result: Any, device: str = "cpu") -> Any:
    """Eager TensorFlow on the CPU returns computed tensors: nothing to wait for."""
    del device
    return result
