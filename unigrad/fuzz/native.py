"""Framework-only source for reproducers: helpers mirroring unigrad's namespace, and the transforms.

A reproducer must run without unigrad, so where unigrad's namespace adds code around a framework's
function (TensorFlow's ``var``, ``matmul`` of vectors, ``take`` with negative indices, PyTorch's
float64 softplus threshold), :data:`HELPERS` holds a copy of what unigrad does, written with the
framework alone; a reproducer includes the helpers its program names. :data:`TRANSFORMS` holds, per
framework, the reverse mode, forward mode, Hessian-vector product and compiled step, written as
unigrad's adapters compute them (``torch.func.jvp``, double backward, ``ForwardAccumulator`` over a
``GradientTape``, ``jax.jvp`` of ``jax.grad``...).
"""

from __future__ import annotations

import re

IMPORTS = {
    "numpy": "import numpy as np",
    "torch": "import torch",
    "tensorflow": "import math\n\nimport tensorflow as tf",
    "jax": "import jax\nimport jax.numpy as jnp\nimport jax.scipy.special",
}

HELPERS = {
    "_np_relu": "def _np_relu(x):\n    return np.maximum(x, 0)\n",
    "_np_sigmoid": (
        "def _np_sigmoid(x):\n    decay = np.exp(-np.abs(x))\n"
        "    return np.where(x >= 0, 1 / (1 + decay), decay / (1 + decay))\n"
    ),
    "_np_softplus": "def _np_softplus(x):\n    return np.logaddexp(x, 0)\n",
    "_np_erf": "import math\n\n_np_erf = np.vectorize(math.erf, otypes=[np.float64])\n",
    "_np_rsqrt": "def _np_rsqrt(x):\n    return 1 / np.sqrt(x)\n",
    "_np_logsumexp": (
        "def _np_logsumexp(x, axis=None, keepdims=False):\n"
        "    top = np.max(x, axis=axis, keepdims=True)\n"
        "    total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top\n"
        "    return total if keepdims else np.squeeze(total, axis=axis)\n"
    ),
    "_np_log_softmax": (
        "def _np_log_softmax(x, axis=-1):\n"
        "    top = np.max(x, axis=axis, keepdims=True)\n"
        "    return x - (np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top)\n"
    ),
    "_np_softmax": (
        "def _np_softmax(x, axis=-1):\n    e = np.exp(x - np.max(x, axis=axis, keepdims=True))\n"
        "    return e / np.sum(e, axis=axis, keepdims=True)\n"
    ),
    "_torch_softplus": (
        "def _torch_softplus(x):  # unigrad moves the linear cut-over to 40 for float64\n"
        "    return torch.nn.functional.softplus(x, threshold=40.0 if x.dtype == torch.float64 else 20.0)\n"
    ),
    "_torch_take": (
        "def _torch_take(x, indices, axis=None):\n"
        "    if axis is None:\n        x, axis = x.reshape(-1), 0\n"
        "    axis = axis % x.ndim\n    indices = torch.as_tensor(indices)\n"
        "    flat = torch.where(indices < 0, indices + x.shape[axis], indices).reshape(-1)\n"
        "    picked = torch.index_select(x, axis, flat)\n"
        "    return picked.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1 :])\n"
    ),
    "_tf_take": (
        "def _tf_take(x, indices, axis=None):\n"
        "    indices = tf.constant(indices, dtype=tf.int64)\n"
        "    if axis is None:\n        x, axis = tf.reshape(x, [-1]), 0\n"
        "    size = tf.shape(x, out_type=indices.dtype)[axis]\n"
        "    return tf.gather(x, tf.where(indices < 0, indices + size, indices), axis=axis)\n"
    ),
    "_tf_var": (
        "def _tf_var(x, axis=None, keepdims=False):\n"
        "    centre = tf.math.reduce_mean(x, axis=axis, keepdims=True)\n"
        "    squares = tf.math.reduce_sum(tf.math.square(x - centre), axis=axis, keepdims=keepdims)\n"
        "    return squares / (tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(centre), x.dtype))\n"
    ),
    "_tf_vector_norm": (
        "def _tf_vector_norm(x, axis=None, keepdims=False):\n"
        "    squares = tf.math.square(tf.math.abs(x))\n"
        "    return tf.math.sqrt(tf.math.reduce_sum(squares, axis=axis, keepdims=keepdims))\n"
    ),
    "_tf_matmul": (
        "def _tf_matmul(a, b):\n"
        "    if a.shape.rank == 1 and b.shape.rank == 1:\n        return tf.tensordot(a, b, axes=1)\n"
        "    left = tf.expand_dims(a, 0) if a.shape.rank == 1 else a\n"
        "    right = tf.expand_dims(b, -1) if b.shape.rank == 1 else b\n"
        "    product = tf.linalg.matmul(left, right)\n"
        "    if a.shape.rank == 1:\n        return tf.squeeze(product, axis=-2)\n"
        "    return tf.squeeze(product, axis=-1) if b.shape.rank == 1 else product\n"
    ),
    "_tf_solve": (
        "def _tf_solve(a, b):\n    vector = b.shape.rank == 1\n"
        "    solution = tf.linalg.solve(a, tf.expand_dims(b, -1) if vector else b)\n"
        "    return tf.squeeze(solution, axis=-1) if vector else solution\n"
    ),
    "_tf_hypot": (
        "def _tf_hypot(x1, x2):  # unigrad's: scaled by the larger magnitude\n"
        "    scale = tf.math.maximum(tf.math.abs(x1), tf.math.abs(x2))\n"
        "    safe = tf.where(scale > 0, scale, tf.ones_like(scale))\n"
        "    result = scale * tf.math.sqrt(tf.math.square(x1 / safe) + tf.math.square(x2 / safe))\n"
        "    infinite = tf.math.is_inf(x1) | tf.math.is_inf(x2)\n"
        "    return tf.where(infinite, tf.constant(float('inf'), dtype=result.dtype), result)\n"
    ),
    "_tf_log2": "def _tf_log2(x):\n    return tf.math.log(x) / tf.constant(math.log(2.0), dtype=x.dtype)\n",
    "_tf_log10": "def _tf_log10(x):\n    return tf.math.log(x) / tf.constant(math.log(10), dtype=x.dtype)\n",
    "_tf_trunc": "def _tf_trunc(x):\n    return tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x))\n",
    "_tf_pow": "def _tf_pow(x, c):\n    return tf.math.pow(x, tf.constant(c, x.dtype))\n",
    "_tf_logaddexp": (
        "def _tf_logaddexp(x1, x2):  # unigrad's: the exact derivative at ties\n"
        "    first = x1 >= x2\n"
        "    diff = tf.where((x1 == x2) & tf.math.is_inf(x1), tf.zeros_like(x1), x2 - x1)\n"
        "    from_first = x1 + tf.math.log1p(tf.math.exp(tf.where(first, diff, tf.zeros_like(diff))))\n"
        "    from_second = x2 + tf.math.log1p(tf.math.exp(tf.where(first, tf.zeros_like(diff), -diff)))\n"
        "    return tf.where(first, from_first, from_second)\n"
    ),
}

#: How each framework sums ``value * weight`` (the loss of a plan).
WEIGHTED_SUM = {
    "numpy": "np.sum({value} * {weight})",
    # from a list: torch 2.13's torch.compile of a torch.func.grad fails on some NumPy constants read
    # inside ("Guard failed on the same frame it was created. This is a bug")
    "torch": "torch.sum({value} * torch.tensor({weight}.tolist(), dtype={value}.dtype))",
    "tensorflow": "tf.math.reduce_sum({value} * tf.constant({weight}, dtype={value}.dtype))",
    "jax": "jnp.sum({value} * jnp.asarray({weight}, dtype={value}.dtype))",
}

TRANSFORMS = {
    "torch": """
def torch_value_and_grad(inputs, dtype=None):
    xs = [torch.tensor(x, dtype=getattr(torch, dtype or DTYPE), requires_grad=True) for x in inputs]
    loss = loss_torch(*xs)
    grads = torch.autograd.grad(loss, xs, allow_unused=True, materialize_grads=True)
    return float(loss.detach()), [g.detach().double().numpy() for g in grads]


def torch_jvp(inputs, direction):
    xs = tuple(torch.tensor(x, dtype=getattr(torch, DTYPE)) for x in inputs)
    vs = tuple(torch.tensor(v, dtype=getattr(torch, DTYPE)) for v in direction)
    return float(torch.func.jvp(loss_torch, xs, vs)[1])


def torch_hvp(inputs, direction):  # reverse over reverse, as unigrad on PyTorch
    xs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    loss = loss_torch(*xs)
    grads = torch.autograd.grad(loss, xs, create_graph=True, allow_unused=True, materialize_grads=True)
    pairs = [(g, torch.tensor(v)) for g, v in zip(grads, direction) if g.requires_grad]
    if not pairs:
        return [np.zeros_like(x) for x in inputs]
    outputs, cotangents = [g for g, _ in pairs], [v for _, v in pairs]
    products = torch.autograd.grad(outputs, xs, cotangents, allow_unused=True, materialize_grads=True)
    # .numpy() as unigrad converts (it fails on the ZeroTensor of a zero Hessian, as unigrad 0.1.0 does)
    return [p.detach().numpy() for p in products]


def torch_compiled(inputs):  # as unigrad: torch.func.grad inside the compiled function
    def scalar_loss(xs):
        loss = loss_torch(*xs)
        return loss.reshape(()), loss

    def step(xs):
        grads, loss = torch.func.grad(scalar_loss, has_aux=True)(xs)
        return loss, grads

    loss, grads = torch.compile(step)([torch.tensor(x, dtype=getattr(torch, DTYPE)) for x in inputs])
    return float(loss.detach()), [g.detach().double().numpy() for g in grads]
""",
    "tensorflow": """
def tensorflow_value_and_grad(inputs, dtype=None):
    xs = [tf.constant(x, dtype=dtype or DTYPE) for x in inputs]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        loss = loss_tensorflow(*xs)
    grads = tape.gradient(loss, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]


def tensorflow_jvp(inputs, direction):
    xs = [tf.constant(x, dtype=DTYPE) for x in inputs]
    vs = [tf.constant(v, dtype=DTYPE) for v in direction]
    with tf.autodiff.ForwardAccumulator(xs, vs) as accumulator:
        loss = loss_tensorflow(*xs)
    return float(accumulator.jvp(loss, unconnected_gradients=tf.UnconnectedGradients.ZERO))


def tensorflow_hvp(inputs, direction):  # forward over reverse, as unigrad on TensorFlow
    xs = [tf.constant(x, dtype="float64") for x in inputs]
    vs = [tf.constant(v, dtype="float64") for v in direction]
    with tf.autodiff.ForwardAccumulator(xs, vs) as accumulator:
        with tf.GradientTape() as tape:
            tape.watch(xs)
            loss = loss_tensorflow(*xs)
        grads = tape.gradient(loss, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [np.asarray(accumulator.jvp(g, unconnected_gradients=tf.UnconnectedGradients.ZERO)) for g in grads]


def tensorflow_compiled(inputs):
    @tf.function
    def step(*xs):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            loss = loss_tensorflow(*xs)
        return loss, tape.gradient(loss, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    loss, grads = step(*[tf.constant(x, dtype=DTYPE) for x in inputs])
    return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]
""",
    "jax": """
def jax_value_and_grad(inputs, dtype=None):
    xs = [jnp.asarray(x, dtype=dtype or DTYPE) for x in inputs]
    loss, grads = jax.value_and_grad(loss_jax, argnums=tuple(range(len(xs))))(*xs)
    return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]


def jax_jvp(inputs, direction):
    xs = tuple(jnp.asarray(x, dtype=DTYPE) for x in inputs)
    vs = tuple(jnp.asarray(v, dtype=DTYPE) for v in direction)
    return float(jax.jvp(loss_jax, xs, vs)[1])


def jax_hvp(inputs, direction):  # forward over reverse, as unigrad on JAX
    xs = tuple(jnp.asarray(x, dtype="float64") for x in inputs)
    vs = tuple(jnp.asarray(v, dtype="float64") for v in direction)
    gradient = jax.grad(loss_jax, argnums=tuple(range(len(xs))))
    return [np.asarray(p) for p in jax.jvp(gradient, xs, vs)[1]]


def jax_compiled(inputs):
    step = jax.jit(jax.value_and_grad(loss_jax, argnums=tuple(range(len(inputs)))))
    loss, grads = step(*[jnp.asarray(x, dtype=DTYPE) for x in inputs])
    return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]
""",
}


def helpers_for(source: str) -> list[str]:
    """The helper definitions ``source`` calls, in a stable order."""
    used = set(re.findall(r"\b(_(?:np|torch|tf)_[a-z0-9_]+)\(", source)) | set(
        re.findall(r"\b(_np_erf)\b", source)
    )
    return [HELPERS[name] for name in sorted(used) if name in HELPERS]
