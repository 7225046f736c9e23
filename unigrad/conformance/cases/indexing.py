"""Gather, slicing, joining and reshaping: gradients that scatter, accumulate and permute."""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case


def _x(shape: tuple[int, ...]):
    def inputs(rng: np.random.Generator) -> tuple[Any, Any]:
        return {"x": rng.normal(size=shape)}, {"w": rng.uniform(0.5, 1.5, size=shape)}

    return inputs


def _take_rows(p: Any, d: Any) -> Any:
    xp = namespace(p)
    rows = xp.take(p["x"], d["index"], axis=0)  # repeated indices: gradients accumulate
    return xp.sum(rows**2)


def _take_rows_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(5, 3))}, {"index": np.array([0, 2, 2, 4, 0, 0])}


def _take_columns(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.tanh(xp.take(p["x"], d["index"], axis=1)))


def _take_columns_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(3, 6))}, {"index": np.array([5, 1, 1, 3])}


def _slices(p: Any, d: Any) -> Any:
    xp = namespace(p)
    x = p["x"]
    return xp.sum(x[1:3] ** 2) + xp.sum(x[:, 0] * 3.0) + xp.sum(xp.exp(x[::2, 1::2]))


def _concat(p: Any, d: Any) -> Any:
    xp = namespace(p)
    joined = xp.concat([p["a"], p["b"] * 2.0, p["a"]], axis=1)
    return xp.sum(xp.sin(joined) * d["w"])


def _concat_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=(3, 4))}, {"w": rng.normal(size=(3, 8))}


def _stack(p: Any, d: Any) -> Any:
    xp = namespace(p)
    stacked = xp.stack([p["a"], p["b"], p["a"] * p["b"]], axis=1)
    return xp.sum(stacked**2 * d["w"])


def _stack_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(4,)), "b": rng.normal(size=(4,))}, {"w": rng.normal(size=(4, 3))}


def _reshape_transpose(p: Any, d: Any) -> Any:
    xp = namespace(p)
    y = xp.permute_dims(xp.reshape(p["x"], (2, 3, 4)), (2, 0, 1))
    return xp.sum(xp.matrix_transpose(y) ** 3 * d["w"])


def _reshape_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(6, 4))}, {"w": rng.normal(size=(4, 3, 2))}


def _expand_squeeze(p: Any, d: Any) -> Any:
    xp = namespace(p)
    y = xp.expand_dims(p["x"], axis=1) * xp.expand_dims(p["x"], axis=0)  # outer product
    return xp.sum(xp.squeeze(xp.sum(y, axis=0, keepdims=True), axis=0) * d["w"][0])


def _flip(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.flip(p["x"], axis=1) * d["w"]) + xp.sum(xp.flip(p["x"]) ** 2)


def _broadcast_to(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.broadcast_to(p["x"], (3, 4)) ** 2 * d["w"])


def _broadcast_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(4,))}, {"w": rng.normal(size=(3, 4))}


def _embedding_lookup(p: Any, d: Any) -> Any:
    xp = namespace(p)
    vectors = xp.take(p["table"], d["tokens"], axis=0)
    return xp.sum(xp.mean(vectors, axis=0) * p["probe"])


def _embedding_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return (
        {"table": rng.normal(size=(7, 3)), "probe": rng.normal(size=(3,))},
        {"tokens": np.array([1, 4, 4, 6, 1])},
    )


def _case(name: str, loss: Any, inputs: Any) -> Case:
    return Case(f"index_{name}", ("indexing",), loss, inputs)


CASES: list[Case] = [
    _case("take_rows_repeated", _take_rows, _take_rows_inputs),
    _case("take_columns", _take_columns, _take_columns_inputs),
    _case("slices_and_strides", _slices, _x((4, 4))),
    _case("concat", _concat, _concat_inputs),
    _case("stack", _stack, _stack_inputs),
    _case("reshape_permute_transpose", _reshape_transpose, _reshape_inputs),
    _case("expand_dims_squeeze", _expand_squeeze, _x((3, 3))),
    _case("flip", _flip, _x((3, 4))),
    _case("broadcast_to", _broadcast_to, _broadcast_inputs),
    _case("embedding_lookup", _embedding_lookup, _embedding_inputs),
]
