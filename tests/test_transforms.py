"""jvp, vjp, jacobian, hessian, hvp and per-example gradients: closed forms, nesting, errors, no mutation."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from conftest import require
from frameworks import dtype_name, make, to_numpy, tolerance
from hypothesis import given, settings
from hypothesis import strategies as st

import unigrad as ug
from unigrad import _tree


def _layer(params: Any, data: Any) -> Any:
    """Vector-valued with a pytree output: {'y': W x + b, 's': sum(b^2)}."""
    xp = ug.namespace(params)
    return {"y": xp.matmul(params["w"], data["x"]) + params["b"], "s": xp.sum(params["b"] ** 2)}


def _layer_problem(backend: str, dtype: str, rng: np.random.Generator) -> tuple[dict, dict, dict]:
    w, b, x = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=3)
    params = {"w": make(backend, w, dtype), "b": make(backend, b, dtype)}
    return params, {"x": make(backend, x, dtype)}, {"w": w, "b": b, "x": x}


def _close(got: Any, want: Any, dtype: str) -> None:
    np.testing.assert_allclose(to_numpy(got), want, **tolerance(dtype))


# -- closed forms ------------------------------------------------------------------------------------


def test_jvp_closed_form(backend: str, dtype: str, rng: np.random.Generator) -> None:
    params, data, raw = _layer_problem(backend, dtype, rng)
    tw, tb = rng.normal(size=(2, 3)), rng.normal(size=2)
    tangents = {"w": make(backend, tw, dtype), "b": make(backend, tb, dtype)}
    out, slope = ug.jvp(_layer, params, tangents, data)
    _close(out["y"], raw["w"] @ raw["x"] + raw["b"], dtype)
    _close(slope["y"], tw @ raw["x"] + tb, dtype)
    _close(slope["s"], 2 * raw["b"] @ tb, dtype)
    assert dtype_name(slope["y"]) == dtype and type(slope["y"]) is type(params["w"])


def test_vjp_closed_form(backend: str, dtype: str, rng: np.random.Generator) -> None:
    params, data, raw = _layer_problem(backend, dtype, rng)
    cy, cs = rng.normal(size=2), 1.5
    cotangent = {"y": make(backend, cy, dtype), "s": make(backend, cs, dtype)}
    out, pulled = ug.vjp(_layer, params, cotangent, data)
    _close(out["s"], raw["b"] @ raw["b"], dtype)
    _close(pulled["w"], np.outer(cy, raw["x"]), dtype)
    _close(pulled["b"], cy + 2 * cs * raw["b"], dtype)
    assert dtype_name(pulled["w"]) == dtype


def test_one_array_at_two_places_gets_a_gradient_per_place(backend: str, dtype: str) -> None:
    """params {"a": x, "b": x} (one array object at two places) differentiates as two arguments, as
    jax.grad does: each place gets the derivative through its own uses only. A tape watching the
    same object twice would hand both places the sum of both (it did on TensorFlow)."""
    values = np.array([1.0, 2.0])
    x = make(backend, values, dtype)
    params = {"a": x, "b": x}
    ones, zeros = make(backend, np.ones(2), dtype), make(backend, np.zeros(2), dtype)

    def scalar(p: Any) -> Any:  # d/da = 4a, d/db = 3
        xp = ug.namespace(p)
        return xp.sum(2.0 * p["a"] ** 2 + 3.0 * p["b"])

    def vector(p: Any) -> Any:  # 2a + 3b
        return 2.0 * p["a"] + 3.0 * p["b"]

    grads = ug.grad(scalar, params)
    _close(grads["a"], 4 * values, dtype)
    _close(grads["b"], [3.0, 3.0], dtype)
    _, slope = ug.jvp(vector, params, {"a": ones, "b": zeros})
    _close(slope, [2.0, 2.0], dtype)
    _, pulled = ug.vjp(vector, params, ones)
    _close(pulled["a"], [2.0, 2.0], dtype)
    _close(pulled["b"], [3.0, 3.0], dtype)
    jac = ug.jacobian(vector, params)
    _close(jac["a"], 2 * np.eye(2), dtype)
    _close(jac["b"], 3 * np.eye(2), dtype)
    product = ug.hvp(scalar, params, {"a": ones, "b": ones})
    _close(product["a"], [4.0, 4.0], dtype)
    _close(product["b"], [0.0, 0.0], dtype)
    hess = ug.hessian(scalar, params)
    _close(hess["a"]["a"], 4 * np.eye(2), dtype)
    _close(hess["a"]["b"], np.zeros((2, 2)), dtype)


def test_jacobian_nests_output_outside_params(backend: str, dtype: str, rng: np.random.Generator) -> None:
    params, data, raw = _layer_problem(backend, dtype, rng)
    jac = ug.jacobian(_layer, params, data)
    assert set(jac) == {"y", "s"} and set(jac["y"]) == {"w", "b"}
    assert tuple(jac["y"]["w"].shape) == (2, 2, 3)  # out.shape + param.shape
    expected_w = np.einsum("ij,k->ijk", np.eye(2), raw["x"])
    _close(jac["y"]["w"], expected_w, dtype)
    _close(jac["y"]["b"], np.eye(2), dtype)
    _close(jac["s"]["w"], np.zeros((2, 3)), dtype)  # an unused parameter gets zeros
    _close(jac["s"]["b"], 2 * raw["b"], dtype)


def test_jacobian_of_a_single_array_is_one_array(backend: str, rng: np.random.Generator) -> None:
    a = rng.normal(size=(4, 3))
    jac = ug.jacobian(
        lambda x: ug.namespace(x).matmul(make(backend, a), x), make(backend, rng.normal(size=3))
    )
    _close(jac, a, "float64")


def test_hessian_of_a_quadratic_has_shape_s_plus_s(
    backend: str, dtype: str, rng: np.random.Generator
) -> None:
    a = rng.normal(size=(6, 6))
    x = rng.normal(size=(2, 3))

    def loss(p: Any, d: Any) -> Any:
        xp = ug.namespace(p)
        flat = xp.reshape(p, (6,))
        return xp.sum(flat * xp.matmul(d, flat))

    hessian = ug.hessian(loss, make(backend, x, dtype), make(backend, a, dtype))
    assert tuple(hessian.shape) == (2, 3, 2, 3)
    _close(hessian, (a + a.T).reshape(2, 3, 2, 3), dtype)


def test_hessian_nests_params_by_params(backend: str, rng: np.random.Generator) -> None:
    x, y = rng.normal(size=2), rng.normal(size=())

    def loss(p: Any) -> Any:
        xp = ug.namespace(p)
        return xp.sum(p["x"] ** 2) * p["y"] ** 2

    hessian = ug.hessian(loss, {"x": make(backend, x), "y": make(backend, y)})
    _close(hessian["x"]["x"], 2 * y**2 * np.eye(2), "float64")
    _close(hessian["x"]["y"], 4 * x * y, "float64")  # shape x.shape + y.shape = (2,)
    _close(hessian["y"]["x"], 4 * x * y, "float64")
    _close(hessian["y"]["y"], 2 * np.sum(x**2), "float64")


def test_hvp_equals_hessian_times_vector(backend: str, dtype: str, rng: np.random.Generator) -> None:
    x, v, c = rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 1.5, size=3)

    def loss(p: Any, d: Any) -> Any:
        xp = ug.namespace(p)
        return xp.sum(d * xp.exp(p)) + xp.sum(p) ** 2

    hessian = np.diag(c * np.exp(x)) + 2.0
    product = ug.hvp(loss, make(backend, x, dtype), make(backend, v, dtype), make(backend, c, dtype))
    _close(product, hessian @ v, dtype)
    assert dtype_name(product) == dtype


def test_per_example_grads_linear_regression(backend: str, dtype: str, rng: np.random.Generator) -> None:
    w, b = rng.normal(size=3), rng.normal(size=())
    x, y = rng.normal(size=(5, 3)), rng.normal(size=5)

    def loss(p: Any, example: Any) -> Any:
        xp = ug.namespace(p)
        assert example["x"].shape == (3,) and example["scale"] == 0.5  # one example, statics as given
        return example["scale"] * (xp.sum(example["x"] * p["w"]) + p["b"] - example["y"]) ** 2

    params = {"w": make(backend, w, dtype), "b": make(backend, b, dtype)}
    batch = {"x": make(backend, x, dtype), "y": make(backend, y, dtype), "scale": 0.5}
    grads = ug.per_example_grads(loss, params, batch)
    residual = x @ w + b - y
    _close(grads["w"], residual[:, None] * x, dtype)
    _close(grads["b"], residual, dtype)
    assert tuple(grads["w"].shape) == (5, 3) and dtype_name(grads["b"]) == dtype


def test_per_example_grads_sum_to_the_batch_gradient(backend: str, rng: np.random.Generator) -> None:
    params = {"w": rng.normal(size=(2, 2)), "b": rng.normal(size=2)}
    batch = {"x": rng.normal(size=(4, 2)), "y": rng.normal(size=(4, 2))}

    def example_loss(p: Any, d: Any) -> Any:
        xp = ug.namespace(p)
        return xp.sum(xp.tanh(xp.matmul(d["x"], p["w"]) + p["b"] - d["y"]) ** 2)

    per_example = ug.per_example_grads(example_loss, params, batch, backend=backend)
    total = ug.grad(example_loss, params, batch, backend=backend)
    assert isinstance(per_example["w"], np.ndarray)  # NumPy in, NumPy out
    for name in params:
        np.testing.assert_allclose(per_example[name].sum(axis=0), total[name], rtol=1e-10)


def test_numpy_in_numpy_out_with_backend(backend: str) -> None:
    x = np.array([1.0, 2.0], dtype=np.float32)
    _, slope = ug.jvp(lambda p: p**3, x, np.ones(2, np.float32), backend=backend)
    assert isinstance(slope, np.ndarray) and slope.dtype == np.float32
    np.testing.assert_allclose(slope, [3.0, 12.0])
    hessian = ug.hessian(lambda p: ug.namespace(p).sum(p**3), x, backend=backend)
    assert isinstance(hessian, np.ndarray)
    np.testing.assert_allclose(hessian, np.diag([6.0, 12.0]))


def test_numpy_reference_backend_agrees_with_closed_forms(rng: np.random.Generator) -> None:
    x, v = rng.normal(size=3), rng.normal(size=3)

    def loss(p: Any) -> Any:
        return np.sum(np.sin(p)) + np.sum(p) ** 2

    hessian = -np.diag(np.sin(x)) + 2.0
    np.testing.assert_allclose(ug.hessian(loss, x, backend="numpy"), hessian, atol=1e-8)
    np.testing.assert_allclose(ug.hvp(loss, x, v, backend="numpy"), hessian @ v, atol=1e-8)
    np.testing.assert_allclose(ug.jacobian(np.sin, x, backend="numpy"), np.diag(np.cos(x)), atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple))
def test_hessian_and_jacobian_shapes_property(shape: tuple[int, ...]) -> None:
    require("torch")
    x = np.random.default_rng(0).normal(size=shape)
    hessian = ug.hessian(lambda p: ug.namespace(p).sum(p**4), x, backend="torch")
    assert hessian.shape == shape + shape
    np.testing.assert_allclose(hessian.reshape(x.size, x.size), np.diag(12 * x.reshape(-1) ** 2), atol=1e-12)
    jac = ug.jacobian(lambda p: {"a": p * 2, "b": ug.namespace(p).sum(p)}, x, backend="torch")
    assert jac["a"].shape == shape + shape and jac["b"].shape == shape


# -- inputs are never changed ---------------------------------------------------------------------------


def _snapshot(tree: Any) -> list[np.ndarray]:
    return [to_numpy(leaf).copy() for leaf in _tree.flatten(tree)[0]]


def test_inputs_are_not_mutated(backend: str, rng: np.random.Generator) -> None:
    params, data, _ = _layer_problem(backend, "float64", rng)
    tangents = {"w": make(backend, rng.normal(size=(2, 3))), "b": make(backend, rng.normal(size=2))}
    batch = {"x": make(backend, rng.normal(size=(3, 3)))}
    before = _snapshot([params, data, tangents, batch])

    def loss(p: Any, d: Any) -> Any:
        return ug.namespace(p).sum(_layer(p, d)["y"] ** 2)

    ug.jvp(_layer, params, tangents, data)
    ug.vjp(_layer, params, {"y": make(backend, np.ones(2)), "s": make(backend, 1.0)}, data)
    ug.jacobian(_layer, params, data)
    ug.hessian(loss, params, data)
    ug.hvp(loss, params, tangents, data)
    ug.per_example_grads(loss, params, batch)
    for old, new in zip(before, _snapshot([params, data, tangents, batch]), strict=True):
        np.testing.assert_array_equal(old, new)
    if backend == "torch":
        assert all(not p.requires_grad and p.grad is None for p in params.values())


# -- bad input: typed errors naming the leaf --------------------------------------------------------------


def _square(p: Any) -> Any:
    return {"y": p["w"] ** 2}


def test_jvp_tangent_structure_shape_and_dtype_errors(backend: str) -> None:
    params = {"w": make(backend, np.ones(3))}
    with pytest.raises(ug.StructureMismatchError, match=r"it lacks tangents\['w'\].*tangents\['v'\]"):
        ug.jvp(_square, params, {"v": make(backend, np.ones(3))})
    with pytest.raises(
        ValueError, match=re.escape("tangents['w'] has shape (2,) but params['w'] has shape (3,)")
    ):
        ug.jvp(_square, params, {"w": make(backend, np.ones(2))})
    with pytest.raises(
        ug.DtypeMismatchError,
        match=re.escape("tangents['w'] has dtype float32 but params['w'] has dtype float64"),
    ):
        ug.jvp(_square, params, {"w": make(backend, np.ones(3), "float32")})
    with pytest.raises(TypeError, match=r"tangents\['w'\] is a float, not an array"):
        ug.jvp(_square, params, {"w": 1.0})


def test_hvp_vector_must_match_params(backend: str) -> None:
    params = {"w": make(backend, np.ones(3))}
    loss = lambda p: ug.namespace(p).sum(p["w"] ** 3)  # noqa: E731
    with pytest.raises(ug.StructureMismatchError, match=re.escape("vector['w'] has shape (3, 1)")):
        ug.hvp(loss, params, {"w": make(backend, np.ones((3, 1)))})
    with pytest.raises(ug.StructureMismatchError, match="vector must have the structure of params"):
        ug.hvp(loss, params, [make(backend, np.ones(3))])


def test_hvp_of_bare_arrays_repeated_keeps_its_checks(backend: str) -> None:
    # From the second call on, a bare native point and direction take a shorter route: same
    # product, same errors for a direction unlike the point or a loss that is not a scalar.
    x, c = make(backend, np.array([0.5, -1.0, 2.0])), make(backend, np.array([1.0, 2.0, 3.0]))
    v = make(backend, np.array([1.0, 0.0, -1.0]))

    def loss(p: Any, d: Any) -> Any:
        return ug.namespace(p).sum(d * p**3)

    for _ in range(2):
        _close(
            ug.hvp(loss, x, v, c),
            6 * np.array([1.0, 2.0, 3.0]) * np.array([0.5, -1.0, 2.0]) * np.array([1.0, 0.0, -1.0]),
            "float64",
        )
        _close(ug.hvp(lambda p: ug.namespace(p).sum(p**3), x, v), 6 * np.array([0.5, 0.0, -2.0]), "float64")
    with pytest.raises(ug.StructureMismatchError, match=re.escape("vector has shape (2,)")):
        ug.hvp(loss, x, make(backend, np.ones(2)), c)
    with pytest.raises(ug.DtypeMismatchError, match="vector has dtype float32"):
        ug.hvp(loss, x, make(backend, np.ones(3), "float32"), c)
    with pytest.raises(ug.InvalidLossError, match=r"loss of shape \(3,\)"):
        ug.hvp(lambda p: p**3, x, v)


def test_vjp_cotangent_must_match_the_output(backend: str) -> None:
    params = {"w": make(backend, np.ones(3))}
    with pytest.raises(
        ug.StructureMismatchError, match=re.escape("cotangent['y'] has shape (2,) but output['y']")
    ):
        ug.vjp(_square, params, {"y": make(backend, np.ones(2))})
    with pytest.raises(ug.DtypeMismatchError, match=r"cotangent\['y'\] has dtype float32"):
        ug.vjp(_square, params, {"y": make(backend, np.ones(3), "float32")})


def test_second_order_needs_a_scalar_loss(backend: str) -> None:
    x = make(backend, np.ones(3))
    with pytest.raises(ug.InvalidLossError, match=r"loss of shape \(3,\).*must be a scalar"):
        ug.hessian(lambda p: p**2, x)
    with pytest.raises(ug.InvalidLossError, match=r"loss of shape \(3,\)"):
        ug.hvp(lambda p: p**2, x, x)
    with pytest.raises(ug.InvalidLossError, match=r"loss of shape \(3,\)"):
        ug.per_example_grads(lambda p, e: p * e, x, make(backend, np.ones((2, 3))))


def test_vector_functions_must_return_floating_arrays(backend: str) -> None:
    x = make(backend, np.ones(2))
    with pytest.raises(ug.InvalidOutputError, match=r"jacobian: fn's output\['n'\] is int"):
        ug.jacobian(lambda p: {"y": p * 2, "n": 3}, x)


def test_per_example_batch_errors_name_the_leaves(backend: str) -> None:
    params = make(backend, np.ones(2))
    loss = lambda p, e: ug.namespace(p).sum(p * e["x"])  # noqa: E731
    batch = {"x": make(backend, np.ones((4, 2))), "y": make(backend, np.ones(3))}
    message = (
        "batch['x'] has 4 examples (leading axis) but batch['y'] has 3; every array in batch needs the same"
    )
    with pytest.raises(ug.StructureMismatchError, match=re.escape(message)):
        ug.per_example_grads(loss, params, batch)
    with pytest.raises(ug.StructureMismatchError, match=r"batch\['s'\] is a scalar array"):
        ug.per_example_grads(loss, params, {"x": make(backend, np.ones((4, 2))), "s": make(backend, 1.0)})
    with pytest.raises(ug.StructureMismatchError, match="batch holds no array"):
        ug.per_example_grads(loss, params, {"x": 1.0})


def test_an_adapter_without_a_transform_says_so() -> None:
    from unigrad.backends import Adapter

    class MinimalAdapter(Adapter):
        name = "minimal"

    with pytest.raises(ug.UnsupportedTransformError, match="backend 'minimal' does not implement hvp"):
        MinimalAdapter().hvp(lambda leaves: 0.0, [], [], lambda out: (out, None))


def test_numpy_params_still_need_a_backend() -> None:
    with pytest.raises(ug.BackendRequiredError):
        ug.hessian(lambda p: (p**2).sum(), np.ones(2))


def test_tensorflow_per_example_falls_back_to_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    require("tensorflow")
    import tensorflow as tf

    from unigrad.backends import _tensorflow

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("pfor cannot convert this op")

    monkeypatch.setattr(tf, "vectorized_map", refuse)
    monkeypatch.setattr(_tensorflow, "_loop_warned", False)
    x = np.arange(6.0).reshape(3, 2)
    with pytest.warns(RuntimeWarning, match="loops over the examples in Python"):
        grads = ug.per_example_grads(
            lambda w, e: tf.reduce_sum(w * e) ** 2, tf.constant([1.0, 1.0], tf.float64), tf.constant(x)
        )
    np.testing.assert_allclose(grads.numpy(), 2 * x.sum(axis=1, keepdims=True) * x)


@pytest.mark.parametrize(
    "view", [lambda p: p, lambda p: p[1:], lambda p: p.reshape(3, 1)], ids=["itself", "slice", "reshape"]
)
def test_numpy_reference_differentiates_outputs_that_are_views_of_params(view) -> None:
    """The finite-difference reference moves the params in place: an output that is a view of them
    moved with them, and its jvp, jacobian and vjp were all 0."""
    x, tangent = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 2.0])
    # The exact Jacobian of a linear view, as a (outputs, 3) matrix: column j is view(e_j).
    want_jac = np.stack([view(e).reshape(-1) for e in np.eye(3)], axis=1)
    out, out_tangent = ug.jvp(view, x, tangent, backend="numpy")
    np.testing.assert_allclose(out, view(x.copy()))
    np.testing.assert_allclose(out_tangent.reshape(-1), want_jac @ tangent, atol=1e-8)
    jac = ug.jacobian(view, x, backend="numpy")
    np.testing.assert_allclose(jac.reshape(-1, 3), want_jac, atol=1e-8)
    cotangent = np.ones_like(view(x.copy()))
    _, pulled = ug.vjp(view, x, cotangent, backend="numpy")
    np.testing.assert_allclose(pulled, want_jac.T @ cotangent.reshape(-1), atol=1e-8)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
