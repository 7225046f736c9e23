"""Grads have exactly the structure of params: containers, None, dataclasses, property tests."""

from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as np
import optree
import pytest
from conftest import require
from frameworks import Ops, make, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import unigrad as ug

Layer = namedtuple("Layer", ["w", "b"])


@dataclasses.dataclass
class Linear:
    weight: object
    bias: object


@dataclasses.dataclass(frozen=True)
class Frozen:
    scale: object


def _sum_of_squares(backend: str):
    ops = Ops(backend)

    def loss_fn(params):
        return sum(ops.sum(leaf**2) for leaf in optree.tree_leaves(params, namespace="unigrad"))

    return loss_fn


def test_nested_containers_keep_structure(backend: str) -> None:
    params = {
        "layers": [Layer(make(backend, [1.0, 2.0]), make(backend, 3.0)), None],
        "head": (make(backend, [[4.0]]), {"extra": make(backend, [5.0])}),
        "linear": Linear(make(backend, [6.0]), None),
        "frozen": Frozen(make(backend, [7.0])),
    }
    grads = ug.grad(_sum_of_squares(backend), params)
    assert optree.tree_structure(grads, namespace="unigrad") == optree.tree_structure(
        params, namespace="unigrad"
    )
    assert isinstance(grads["layers"][0], Layer)
    assert grads["layers"][1] is None
    assert isinstance(grads["linear"], Linear) and grads["linear"].bias is None
    assert isinstance(grads["frozen"], Frozen)
    np.testing.assert_array_equal(to_numpy(grads["layers"][0].w), [2.0, 4.0])
    np.testing.assert_array_equal(to_numpy(grads["head"][0]), [[8.0]])
    np.testing.assert_array_equal(to_numpy(grads["frozen"].scale), [14.0])


def test_single_array_params(backend: str) -> None:
    grads = ug.grad(lambda x: Ops(backend).sum(x**2), make(backend, [1.0, -1.0]))
    np.testing.assert_array_equal(to_numpy(grads), [2.0, -2.0])


def test_data_with_non_array_leaves_is_passed_through(backend: str) -> None:
    ops = Ops(backend)
    seen = {}

    def loss_fn(params, data):
        seen.update(data)
        return ops.sum(params["w"] * data["scale"]) * data["factor"]

    data = {"scale": make(backend, [1.0, 2.0]), "factor": 3, "name": "batch-1", "skip": None}
    grads = ug.grad(loss_fn, {"w": make(backend, [0.0, 0.0])}, data)
    np.testing.assert_array_equal(to_numpy(grads["w"]), [3.0, 6.0])
    assert seen["name"] == "batch-1" and seen["factor"] == 3 and seen["skip"] is None
    assert seen["scale"] is data["scale"]  # untouched: the very same object


# Property test: random nested structures of random shapes; d/dx sum(x^2) = 2x on every leaf.
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)
leaf_shapes = st.recursive(
    shapes,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(st.sampled_from("abcde"), children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=8,
)


def _random_values(structure, seed: int):
    """``structure`` (shapes at the leaves) filled with float64 normal samples."""
    rng = np.random.default_rng(seed)
    is_shape = lambda node: isinstance(node, tuple) and all(isinstance(d, int) for d in node)  # noqa: E731
    return optree.tree_map(lambda s: rng.normal(size=s), structure, is_leaf=is_shape)


@settings(max_examples=25, deadline=None)
@given(structure=leaf_shapes, seed=st.integers(0, 2**16))
def test_property_structure_and_values_round_trip(structure, seed: int) -> None:
    params = _random_values(structure, seed)
    for backend in ug.installed_backends():
        grads = ug.grad(_sum_of_squares(backend), params, backend=backend)
        assert optree.tree_structure(grads) == optree.tree_structure(params)
        for g, p in zip(optree.tree_leaves(grads), optree.tree_leaves(params), strict=True):
            assert isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == p.dtype
            np.testing.assert_allclose(g, 2 * p, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(structure=leaf_shapes, seed=st.integers(0, 2**16))
def test_property_native_params_twice_give_the_same_structure_and_values(structure, seed: int) -> None:
    # Native params (no backend=): the second call takes the remembered plan and flatten paths.
    values = _random_values(structure, seed)
    for backend in ug.installed_backends():
        params = optree.tree_map(lambda v, b=backend: make(b, v, "float32"), values)
        for _ in range(2):
            grads = ug.grad(_sum_of_squares(backend), params)
            assert optree.tree_structure(grads) == optree.tree_structure(params)
            for g, v in zip(optree.tree_leaves(grads), optree.tree_leaves(values), strict=True):
                np.testing.assert_allclose(to_numpy(g), 2 * v.astype(np.float32), rtol=1e-6)


# -- containers registered with JAX (Equinox modules, Flax structs, jax.tree_util classes) --------


def _jax_registered_linear() -> type:
    import functools

    import jax

    @functools.partial(jax.tree_util.register_dataclass, data_fields=["w", "b"], meta_fields=["activation"])
    @dataclasses.dataclass
    class Linear:
        w: object
        b: object
        activation: str = "tanh"  # static: part of the structure, never a leaf

    return Linear


def test_jax_registered_dataclass_flattens_as_jax_does() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    linear = _jax_registered_linear()
    layer = linear(jnp.ones((3, 2)), jnp.zeros(2), activation="sin")
    x = jnp.linspace(0.0, 1.0, 12).reshape(4, 3)

    def loss(p, data):
        return jnp.sum(getattr(jnp, p.activation)(data @ p.w + p.b))

    grads = ug.grad(loss, layer, x)
    want = jax.grad(loss)(layer, x)
    assert type(grads) is linear and grads.activation == "sin"
    np.testing.assert_allclose(grads.w, want.w, rtol=1e-6)
    np.testing.assert_allclose(grads.b, want.b, rtol=1e-6)
    with pytest.raises(ug.InvalidParamsError, match=r"params\.b is .*int32"):
        ug.grad(loss, linear(jnp.ones((3, 2)), jnp.zeros(2, dtype=jnp.int32)), x)


def test_jax_registered_node_with_numpy_leaves_runs_on_another_backend() -> None:
    require("jax", "torch")
    import torch

    linear = _jax_registered_linear()
    layer = linear(np.ones((3, 2), np.float32), np.zeros(2, np.float32))
    x = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(4, 3)
    grads = ug.grad(lambda p, d: torch.tanh(d @ p.w + p.b).sum(), layer, x, backend="torch")
    assert type(grads) is linear and isinstance(grads.w, np.ndarray)
    want = ug.reference_grad(lambda p, d: np.tanh(d @ p.w + p.b).sum(), layer, x)
    np.testing.assert_allclose(grads.w, want.w, rtol=1e-4)


def test_jax_pytree_node_class_without_field_names_is_named_by_position() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    @jax.tree_util.register_pytree_node_class
    class Pair:
        def __init__(self, first, second, label):
            self.first, self.second, self.label = first, second, label

        def tree_flatten(self):
            return (self.first, self.second), self.label

        @classmethod
        def tree_unflatten(cls, label, children):
            return cls(*children, label)

    pair = Pair(jnp.ones(2), {"k": jnp.zeros(1)}, "p")
    grads = ug.grad(lambda p: jnp.sum(p.first**2) + jnp.sum(p.second["k"]), pair)
    assert type(grads) is Pair and grads.label == "p"
    np.testing.assert_allclose(grads.first, [2.0, 2.0])
    with pytest.raises(ug.InvalidParamsError, match=r"params\[1\] is a str value"):
        ug.grad(lambda p: jnp.sum(p.first), Pair(jnp.ones(2), "text", "p"))


def test_jax_registered_node_in_a_compiled_step() -> None:
    require("jax")
    import jax.numpy as jnp

    linear = _jax_registered_linear()
    x = jnp.ones((4, 3))

    def loss(p, data):
        return jnp.sum(jnp.tanh(data @ p.w + p.b))

    step = ug.value_and_grad_fn(loss, jit=True)
    for scale in (1.0, 2.0):
        layer = linear(scale * jnp.ones((3, 2)), jnp.zeros(2))
        _, grads = step(layer, x)
        np.testing.assert_allclose(grads.w, ug.grad(loss, layer, x).w, rtol=1e-6)
    assert type(grads) is linear and step.cache_size == 1
