"""The NumPy path (NumPy params and data with ``backend=``): what its remembered plans must not change.

A repeated call reuses how the previous one converted its leaves; these tests change one thing at a
time (dtype, leaf type, backend) after a first call and check that the result is what a first call
would give.
"""

from __future__ import annotations

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require
from tests.frameworks import tolerance


def loss_fn(params: dict, data: dict) -> object:
    xp = ug.namespace(params["w"])
    return xp.sum((xp.sum(data["x"] * params["w"], axis=1) + params["b"] - data["y"]) ** 2)


def inputs(dtype: str = "float32") -> tuple[dict, dict]:
    rng = np.random.default_rng(3)
    params = {"w": rng.normal(size=2).astype(dtype), "b": np.asarray(0.5, dtype)}
    data = {"x": rng.normal(size=(8, 2)).astype(dtype), "y": rng.normal(size=8).astype(dtype)}
    return params, data


def closed_form(params: dict, data: dict) -> dict:
    residual = data["x"] @ params["w"] + params["b"] - data["y"]
    return {"w": 2 * data["x"].T @ residual, "b": 2 * residual.sum()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_repeated_calls_give_writable_numpy_of_the_param_dtype(backend: str, dtype: str) -> None:
    for _ in range(3):
        params, data = inputs(dtype)
        grads = ug.grad(loss_fn, params, data, backend=backend)
        for key, value in closed_form(params, data).items():
            assert type(grads[key]) is np.ndarray and grads[key].dtype == np.dtype(dtype)
            assert grads[key].flags.writeable
            np.testing.assert_allclose(grads[key], value, **tolerance(dtype))
        loss, _ = ug.value_and_grad(loss_fn, params, data, backend=backend)
        assert type(loss) is np.ndarray and loss.dtype == np.dtype(dtype)


def test_a_remembered_plan_still_rejects_a_new_dtype() -> None:
    require("torch")
    params, data = inputs()
    ug.grad(loss_fn, params, data, backend="torch")
    with pytest.raises(ug.InvalidParamsError, match=r"params\['w'\] is a numpy ndarray of dtype int32"):
        ug.grad(loss_fn, {"w": params["w"].astype(np.int32), "b": params["b"]}, data, backend="torch")


def test_data_of_another_kind_after_numpy_data() -> None:
    require("torch")
    import torch

    params, data = inputs()
    ug.grad(loss_fn, params, data, backend="torch")
    mixed = {"x": torch.from_numpy(data["x"]), "y": data["y"]}
    grads = ug.grad(loss_fn, params, mixed, backend="torch")
    np.testing.assert_allclose(grads["w"], closed_form(params, data)["w"], **tolerance("float32"))


def test_float64_on_jax_after_float32_on_jax() -> None:
    require("jax")
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        ug.grad(loss_fn, *inputs("float32"), backend="jax")  # remembered: float32 needs no scope
        params, data = inputs("float64")
        grads = ug.grad(loss_fn, params, data, backend="jax")
        assert grads["w"].dtype == np.float64
        np.testing.assert_allclose(grads["w"], closed_form(params, data)["w"], rtol=1e-12)
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", before)


def test_numpy_gradients_do_not_share_memory_between_elements(backend: str) -> None:
    # PyTorch's gradient of a sum is an expanded tensor (stride 0): its NumPy view would make every
    # element one memory cell, so writing one element would change them all.
    grads = ug.grad(lambda x: ug.namespace(x).sum(x), np.ones(3), backend=backend)
    assert grads.flags.writeable and 0 not in grads.strides
    grads[0] = 5.0
    np.testing.assert_array_equal(grads, [5.0, 1.0, 1.0])


def test_flat_data_dicts_keep_their_keys_order_and_values_on_repeated_calls() -> None:
    require("torch")
    import torch

    params, data = inputs()
    seen: list[dict] = []

    def recording_loss(p: dict, d: dict) -> object:
        seen.append(d)
        return loss_fn(p, d)

    reordered = {"y": data["y"], "x": data["x"]}
    for call_data in (data, data, reordered, reordered, {**data, "note": "text"}):
        ug.grad(recording_loss, params, call_data, backend="torch")
    for call_data, given in zip((data, data, reordered, reordered), seen, strict=False):
        assert list(given) == list(call_data)
        assert all(isinstance(given[key], torch.Tensor) for key in call_data)
        np.testing.assert_array_equal(given["x"].numpy(), data["x"])
    assert seen[-1]["note"] == "text" and isinstance(seen[-1]["x"], torch.Tensor)
    # a nested container as a value goes through the general path, converted all the same
    ug.grad(
        recording_loss, params, {"x": data["x"], "y": [data["y"]][0], "extra": [data["y"]]}, backend="torch"
    )
    assert isinstance(seen[-1]["extra"][0], torch.Tensor)
