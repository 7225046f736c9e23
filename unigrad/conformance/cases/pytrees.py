"""Parameter structures: deep nesting, many small leaves, unused leaves, empty and 0-d arrays."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import optree

from unigrad._namespace import namespace
from unigrad.conformance.case import Case

Pair = namedtuple("Pair", ["left", "right"])


def _leaves(p: Any) -> list[Any]:
    return optree.tree_leaves(p, namespace="unigrad")


def _sum_of_functions(p: Any, d: Any) -> Any:
    xp = namespace(p)
    total = 0.0
    for index, leaf in enumerate(_leaves(p)):
        # frequencies stay near 1: a high one would make bfloat16 rounding of the argument dominate
        total = total + xp.sum(xp.sin(leaf * (1.0 + 0.01 * index)) + leaf**2)
    return total


def _deep_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "a": {"b": {"c": {"d": {"e": rng.normal(size=(2,))}}}},
        "list": [rng.normal(size=(3,)), (rng.normal(size=()), [rng.normal(size=(1, 2))])],
        "pair": Pair(rng.normal(size=(2, 2)), None),
    }
    return params, None


def _many_leaves_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {f"w{i:02d}": rng.normal(size=(2,)) for i in range(60)}, None


def _unconnected(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(p["used"] ** 2)  # p["unused"] and p["frozen"] never reach the loss


def _unconnected_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return (
        {"used": rng.normal(size=(3,)), "unused": rng.normal(size=(2, 2)), "frozen": [rng.normal(size=())]},
        None,
    )


def _zero_size(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(p["empty"] * 2.0) + xp.sum(p["x"] ** 2) + xp.sum(xp.matmul(p["wide"], p["tall"]))


def _zero_size_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {
        "empty": np.zeros((0,)),
        "x": rng.normal(size=(3,)),
        "wide": np.zeros((2, 0)),
        "tall": np.zeros((0, 3)),
    }
    return params, None


def _scalars(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return p["a"] * p["b"] + xp.exp(p["c"]) * p["a"] ** 2


def _scalar_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {k: rng.normal(size=()) for k in "abc"}, None


def _shared_leaf_use(p: Any, d: Any) -> Any:
    xp = namespace(p)
    # One parameter used in three places: its gradient is the sum of the three contributions.
    x = p["x"]
    return xp.sum(x * x) + xp.sum(xp.tanh(x)) + xp.sum(xp.matmul(d["m"], x))


def _shared_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(4,))}, {"m": rng.normal(size=(3, 4))}


def _case(name: str, loss: Any, inputs: Any) -> Case:
    return Case(f"pytree_{name}", ("pytree",), loss, inputs)


CASES: list[Case] = [
    _case("deep_nesting", _sum_of_functions, _deep_inputs),
    _case("many_small_leaves", _sum_of_functions, _many_leaves_inputs),
    _case("unconnected_leaves", _unconnected, _unconnected_inputs),
    _case("zero_size_arrays", _zero_size, _zero_size_inputs),
    _case("scalars_0d", _scalars, _scalar_inputs),
    _case("shared_leaf_use", _shared_leaf_use, _shared_inputs),
]
