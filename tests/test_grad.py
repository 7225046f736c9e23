"""Gradients are right: closed forms and the finite-difference reference, float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import Ops, dtype_name, float64_rtol, make, to_numpy, tolerance

import unigrad as ug


def test_classic_square_at_three(backend: str, dtype: str) -> None:
    x = make(backend, 3.0, dtype)
    loss, grad = ug.value_and_grad(lambda v: v**2, x)
    assert to_numpy(loss) == 9.0
    assert to_numpy(grad) == 6.0
    assert dtype_name(grad) == dtype


def test_quadratic_matches_closed_form(backend: str, dtype: str, rng: np.random.Generator) -> None:
    a = rng.uniform(0.5, 2.0, size=(4, 3))
    x = rng.normal(size=(4, 3))
    ops = Ops(backend)
    grads = ug.grad(
        lambda p, d: ops.sum(d["a"] * p["x"] ** 2),
        {"x": make(backend, x, dtype)},
        {"a": make(backend, a, dtype)},
    )
    np.testing.assert_allclose(to_numpy(grads["x"]), 2 * a * x, **tolerance(dtype))


def _mlp_problem(rng: np.random.Generator) -> tuple[dict, dict]:
    params = {
        "w1": rng.normal(scale=0.5, size=(5, 7)),
        "b1": rng.normal(scale=0.1, size=(7,)),
        "w2": rng.normal(scale=0.5, size=(7, 3)),
        "b2": rng.normal(scale=0.1, size=(3,)),
    }
    labels = rng.integers(0, 3, size=6)
    data = {"x": rng.normal(size=(6, 5)), "onehot": np.eye(3)[labels]}
    return params, data


def test_mlp_softmax_cross_entropy_matches_reference(
    backend: str, dtype: str, rng: np.random.Generator
) -> None:
    params, data = _mlp_problem(rng)
    expected = ug.reference_grad(Ops("numpy").mlp_loss, params, data)
    ops = Ops(backend)
    grads = ug.grad(
        ops.mlp_loss,
        {k: make(backend, v, dtype) for k, v in params.items()},
        {k: make(backend, v, dtype) for k, v in data.items()},
    )
    assert set(grads) == set(params)
    for name in params:
        assert dtype_name(grads[name]) == dtype
        np.testing.assert_allclose(to_numpy(grads[name]), expected[name], **tolerance(dtype))


def test_value_is_the_loss(backend: str, rng: np.random.Generator) -> None:
    params, data = _mlp_problem(rng)
    ops = Ops(backend)
    loss, _ = ug.value_and_grad(
        ops.mlp_loss,
        {k: make(backend, v) for k, v in params.items()},
        {k: make(backend, v) for k, v in data.items()},
    )
    want = Ops("numpy").mlp_loss(params, data)
    np.testing.assert_allclose(to_numpy(loss), want, rtol=float64_rtol(backend))  # the MLP uses exp


def test_has_aux_returns_aux_untouched(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0])

    def loss_fn(p):
        return ops.sum(p**3), {"doubled": p * 2, "label": "cubes", "count": 2}

    (loss, aux), grads = ug.value_and_grad(loss_fn, x, has_aux=True)
    assert to_numpy(loss) == 9.0
    np.testing.assert_array_equal(to_numpy(grads), [3.0, 12.0])
    np.testing.assert_array_equal(to_numpy(aux["doubled"]), [2.0, 4.0])
    assert aux["label"] == "cubes" and aux["count"] == 2

    grads_only, aux_only = ug.grad(loss_fn, x, has_aux=True)
    np.testing.assert_array_equal(to_numpy(grads_only), [3.0, 12.0])
    assert aux_only["label"] == "cubes"


def test_loss_of_shape_one_is_accepted_and_keeps_its_shape(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0])
    one = make(backend, [1.0])
    loss, grads = ug.value_and_grad(lambda p: ops.sum(p**2) * one, x)
    assert tuple(loss.shape) == (1,)
    np.testing.assert_array_equal(to_numpy(grads), [2.0, 4.0])


def test_unconnected_leaves_get_zeros(backend: str, dtype: str) -> None:
    ops = Ops(backend)
    params = {"used": make(backend, [1.0, 2.0], dtype), "unused": make(backend, [[5.0]], dtype)}
    grads = ug.grad(lambda p: ops.sum(p["used"] ** 2), params)
    np.testing.assert_array_equal(to_numpy(grads["unused"]), [[0.0]])
    assert dtype_name(grads["unused"]) == dtype
    assert tuple(grads["unused"].shape) == (1, 1)


def test_loss_that_ignores_params_gives_zeros(backend: str) -> None:
    constant = make(backend, 4.0)
    grads = ug.grad(lambda p: constant * 1.0, {"w": make(backend, [1.0, 2.0])})
    np.testing.assert_array_equal(to_numpy(grads["w"]), [0.0, 0.0])


@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_low_precision_keeps_dtype(backend: str, low: str) -> None:
    x = _cast(backend, make(backend, [1.0, 2.0], "float32"), low)
    ops = Ops(backend)
    grads = ug.grad(lambda p: ops.sum(p * p), x)
    assert dtype_name(grads) == low
    np.testing.assert_allclose(to_numpy(grads), [2.0, 4.0], rtol=1e-2)


def _cast(backend: str, x, dtype: str):
    if backend == "torch":
        import torch

        return x.to(getattr(torch, dtype))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.cast(x, dtype)
    if backend == "mlx":
        import mlx.core as mx

        return x.astype(getattr(mx, dtype))
    return x.astype(dtype)


def test_reference_grad_matches_closed_form(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 2))
    grads = ug.reference_grad(lambda p: np.sum(np.sin(p["x"]) * p["x"]), {"x": x})
    np.testing.assert_allclose(grads["x"], np.cos(x) * x + np.sin(x), rtol=1e-8, atol=1e-10)
    assert grads["x"].dtype == np.float64


def test_numpy_backend_returns_param_dtype(rng: np.random.Generator) -> None:
    x = rng.normal(size=3).astype(np.float32)
    grads = ug.grad(lambda p: np.sum(p**2), x, backend="numpy")
    assert grads.dtype == np.float32
    np.testing.assert_allclose(grads, 2 * x, rtol=1e-6)
