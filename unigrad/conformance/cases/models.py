"""Small-model cases: the layers real training loops differentiate, end to end.

Each model is a few hundred parameters at most (the finite-difference reference costs two forward
passes per parameter element) and ends in a scalar training loss against seeded targets.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case

LAYER_NORM_EPS = 1e-5


def _dense(xp: Any, x: Any, w: Any, b: Any) -> Any:
    return xp.matmul(x, w) + b


def _layer_norm(xp: Any, x: Any, gain: Any, bias: Any) -> Any:
    mean = xp.mean(x, axis=-1, keepdims=True)
    variance = xp.var(x, axis=-1, keepdims=True)
    return (x - mean) / xp.sqrt(variance + LAYER_NORM_EPS) * gain + bias


def _mse(xp: Any, prediction: Any, target: Any) -> Any:
    return xp.mean(xp.square(prediction - target))


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(size=(fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))


def _mlp_params(rng: np.random.Generator, sizes: tuple[int, ...]) -> dict[str, np.ndarray]:
    params = {}
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        params[f"w{layer}"] = _glorot(rng, fan_in, fan_out)
        params[f"b{layer}"] = rng.normal(size=fan_out) * 0.1
    return params


MLP_SIZES = (3, 8, 8, 1)


def _mlp_tanh_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    h = xp.tanh(_dense(xp, data["x"], params["w0"], params["b0"]))
    h = xp.tanh(_dense(xp, h, params["w1"], params["b1"]))
    return _mse(xp, _dense(xp, h, params["w2"], params["b2"]), data["y"])


def _mlp_tanh_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    data = {"x": rng.normal(size=(8, 3)), "y": rng.normal(size=(8, 1))}
    return _mlp_params(rng, MLP_SIZES), data


#: Smallest |pre-activation| the relu MLP's generator accepts: far enough from the kink that
#: bfloat16 round-off (about 1e-2 here) cannot flip a unit on or off.
RELU_MARGIN = 0.05


def _relu_pre_activations(params: dict[str, np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    first = x @ params["w0"] + params["b0"]
    second = np.maximum(first, 0.0) @ params["w1"] + params["b1"]
    return [first, second]


def _mlp_relu_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    h = xp.relu(_dense(xp, data["x"], params["w0"], params["b0"]))
    h = xp.relu(_dense(xp, h, params["w1"], params["b1"]))
    return _mse(xp, _dense(xp, h, params["w2"], params["b2"]), data["y"])


def _mlp_relu_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Resample until no unit is near relu's kink; each attempt is cheap and a few suffice.
    while True:
        params = _mlp_params(rng, MLP_SIZES)
        x = rng.normal(size=(4, 3))
        pre_activations = _relu_pre_activations(params, x)
        if all(np.abs(z).min() > RELU_MARGIN for z in pre_activations):
            return params, {"x": x, "y": rng.normal(size=(4, 1))}


def _layer_norm_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return _mse(xp, _layer_norm(xp, params["x"], params["gain"], params["bias"]), data["target"])


def _layer_norm_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "x": rng.normal(size=(4, 6)) * 2.0 + 1.0,
        "gain": 1.0 + 0.1 * rng.normal(size=6),
        "bias": 0.1 * rng.normal(size=6),
    }
    return params, {"target": rng.normal(size=(4, 6))}


ATTENTION_HEADS, ATTENTION_SEQ, ATTENTION_DIM = 2, 4, 8


def _split_heads(xp: Any, x: Any) -> Any:
    """(seq, d_model) -> (heads, seq, d_head)."""
    head_dim = ATTENTION_DIM // ATTENTION_HEADS
    return xp.permute_dims(xp.reshape(x, (ATTENTION_SEQ, ATTENTION_HEADS, head_dim)), (1, 0, 2))


def _attention_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    x = data["x"]
    q = _split_heads(xp, xp.matmul(x, params["wq"]))
    k = _split_heads(xp, xp.matmul(x, params["wk"]))
    v = _split_heads(xp, xp.matmul(x, params["wv"]))
    scale = 1.0 / float(np.sqrt(ATTENTION_DIM // ATTENTION_HEADS))
    weights = xp.softmax(xp.matmul(q, xp.matrix_transpose(k)) * scale, axis=-1)
    heads = xp.matmul(weights, v)
    merged = xp.reshape(xp.permute_dims(heads, (1, 0, 2)), (ATTENTION_SEQ, ATTENTION_DIM))
    out = x + xp.matmul(merged, params["wo"])
    return _mse(xp, out, data["target"])


def _attention_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {name: _glorot(rng, ATTENTION_DIM, ATTENTION_DIM) for name in ("wq", "wk", "wv", "wo")}
    data = {
        "x": rng.normal(size=(ATTENTION_SEQ, ATTENTION_DIM)),
        "target": rng.normal(size=(ATTENTION_SEQ, ATTENTION_DIM)),
    }
    return params, data


RNN_STEPS = 5


def _rnn_loss(params: Any, data: Any = None) -> Any:
    # A tanh cell unrolled over RNN_STEPS with a Python loop; the loss reads every hidden state.
    xp = namespace(params)
    xs = data["xs"]
    h = xp.zeros_like(xp.matmul(xs[0], params["wx"]))
    loss = 0.0
    for step in range(RNN_STEPS):
        h = xp.tanh(xp.matmul(xs[step], params["wx"]) + xp.matmul(h, params["wh"]) + params["b"])
        loss = loss + _mse(xp, xp.matmul(h, params["wy"]), data["ys"][step])
    return loss / RNN_STEPS


def _rnn_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "wx": _glorot(rng, 3, 4),
        "wh": _glorot(rng, 4, 4),
        "b": rng.normal(size=4) * 0.1,
        "wy": _glorot(rng, 4, 1),
    }
    data = {"xs": rng.normal(size=(RNN_STEPS, 2, 3)), "ys": rng.normal(size=(RNN_STEPS, 2, 1))}
    return params, data


def _residual_block_loss(params: Any, data: Any = None) -> Any:
    # SiLU MLP with a skip connection, then layer norm: a post-norm transformer feed-forward block.
    xp = namespace(params)
    x = data["x"]
    hidden = _dense(xp, x, params["w1"], params["b1"])
    hidden = hidden * xp.sigmoid(hidden)
    out = _layer_norm(xp, x + _dense(xp, hidden, params["w2"], params["b2"]), params["gain"], params["bias"])
    return _mse(xp, out, data["target"])


def _residual_block_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "w1": _glorot(rng, 6, 8),
        "b1": rng.normal(size=8) * 0.1,
        "w2": _glorot(rng, 8, 6),
        "b2": rng.normal(size=6) * 0.1,
        "gain": 1.0 + 0.1 * rng.normal(size=6),
        "bias": 0.1 * rng.normal(size=6),
    }
    return params, {"x": rng.normal(size=(4, 6)), "target": rng.normal(size=(4, 6))}


EMBEDDING_VOCAB, EMBEDDING_DIM, BAGS, BAG_SIZE, CLASSES = 10, 4, 3, 5, 2


def _embedding_bag_loss(params: Any, data: Any = None) -> Any:
    # Repeated tokens make the embedding gradient a scatter-add; unused rows must get exact zeros.
    xp = namespace(params)
    rows = xp.take(params["embedding"], data["tokens"], axis=0)
    bags = xp.mean(xp.reshape(rows, (BAGS, BAG_SIZE, EMBEDDING_DIM)), axis=1)
    log_probs = xp.log_softmax(_dense(xp, bags, params["w"], params["b"]), axis=-1)
    return -xp.mean(xp.sum(data["one_hot"] * log_probs, axis=-1))


def _embedding_bag_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Tokens from the first 7 of 10 rows only, with repeats guaranteed by the pigeonhole principle.
    tokens = rng.integers(0, 7, size=BAGS * BAG_SIZE).astype(np.int64)
    labels = rng.integers(0, CLASSES, size=BAGS)
    params = {
        "embedding": rng.normal(size=(EMBEDDING_VOCAB, EMBEDDING_DIM)),
        "w": _glorot(rng, EMBEDDING_DIM, CLASSES),
        "b": np.zeros(CLASSES),
    }
    return params, {"tokens": tokens, "one_hot": np.eye(CLASSES)[labels]}


def _gru_cell_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    x, h = data["x"], params["h"]
    update = xp.sigmoid(xp.matmul(x, params["wz"]) + xp.matmul(h, params["uz"]) + params["bz"])
    reset = xp.sigmoid(xp.matmul(x, params["wr"]) + xp.matmul(h, params["ur"]) + params["br"])
    candidate = xp.tanh(xp.matmul(x, params["wn"]) + xp.matmul(reset * h, params["un"]) + params["bn"])
    h_next = (1.0 - update) * candidate + update * h
    return _mse(xp, h_next, data["target"])


def _gru_cell_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {"h": np.tanh(rng.normal(size=(2, 4)))}
    for gate in ("z", "r", "n"):
        params[f"w{gate}"] = _glorot(rng, 3, 4)
        params[f"u{gate}"] = _glorot(rng, 4, 4)
        params[f"b{gate}"] = rng.normal(size=4) * 0.1
    return params, {"x": rng.normal(size=(2, 3)), "target": rng.normal(size=(2, 4))}


def _softmax_regression_loss(params: Any, data: Any = None) -> Any:
    # Multinomial logistic regression with weight decay: the classic convex training problem.
    xp = namespace(params)
    log_probs = xp.log_softmax(_dense(xp, data["x"], params["w"], params["b"]), axis=-1)
    nll = -xp.mean(xp.sum(data["one_hot"] * log_probs, axis=-1))
    return nll + 1e-2 * xp.sum(xp.square(params["w"]))


def _softmax_regression_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Three Gaussian blobs of 10 points in 2-D.
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = np.repeat([0, 1, 2], 10)
    x = centres[labels] + 0.8 * rng.normal(size=(30, 2))
    params = {"w": rng.normal(size=(2, 3)) * 0.3, "b": np.zeros(3)}
    return params, {"x": x, "one_hot": np.eye(3)[labels]}


CASES: list[Case] = [
    Case("model_mlp_tanh", ("model", "dense"), _mlp_tanh_loss, _mlp_tanh_inputs),
    Case("model_mlp_relu", ("model", "dense", "kink"), _mlp_relu_loss, _mlp_relu_inputs),
    Case("model_layer_norm", ("model", "normalisation", "reduction"), _layer_norm_loss, _layer_norm_inputs),
    Case("model_attention", ("model", "attention", "softmax"), _attention_loss, _attention_inputs),
    Case("model_rnn", ("model", "recurrent"), _rnn_loss, _rnn_inputs),
    Case(
        "model_residual_block",
        ("model", "dense", "normalisation"),
        _residual_block_loss,
        _residual_block_inputs,
    ),
    Case(
        "model_embedding_bag", ("model", "indexing", "embedding"), _embedding_bag_loss, _embedding_bag_inputs
    ),
    Case("model_gru_cell", ("model", "recurrent", "gated"), _gru_cell_loss, _gru_cell_inputs),
    Case(
        "model_multinomial_logistic_regression",
        ("model", "regression", "softmax"),
        _softmax_regression_loss,
        _softmax_regression_inputs,
    ),
]
